// Private to tokenflight: reading the small PEM files keys and certificates come in.
#ifndef TOKENFLIGHT_SRC_PEM_FILE_HPP
#define TOKENFLIGHT_SRC_PEM_FILE_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <filesystem>

namespace tokenflight::detail {

/// A key or certificate file is small: anything past this is not one, and is not read whole.
inline constexpr std::size_t pem_file_limit = 64 * 1024;

/// The whole of a PEM file, as a secret (it may hold a private key); the read buffer is wiped.
/// Errors: the file's open or read error; `too_large` past pem_file_limit.
boost::system::result<secret> read_pem_file(const std::filesystem::path& path, error_code too_large);

/// OpenSSL's passphrase callback that refuses: an encrypted PEM fails instead of prompting.
int no_passphrase(char*, int, int, void*);

} // namespace tokenflight::detail

#endif
