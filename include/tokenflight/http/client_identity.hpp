#ifndef TOKENFLIGHT_HTTP_CLIENT_IDENTITY_HPP
#define TOKENFLIGHT_HTTP_CLIENT_IDENTITY_HPP

#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

/// @file
/// A TLS client certificate with its private key: mutual TLS (RFC 8705).

namespace tokenflight::detail {
struct access;
}

namespace tokenflight::http {

/// A client certificate, the chain sent with it, and its private key, for mutual TLS: client
/// authentication at a token endpoint (`tls_client_auth`, `self_signed_tls_client_auth`) and
/// certificate-bound access tokens (RFC 8705), or any server that asks for a client certificate.
///
/// - Loaded from PEM: the certificate first, then any intermediate certificates to send with it;
///   the private key (PKCS#8 or traditional RSA/EC; an encrypted key is refused, never prompted
///   for) must be the certificate's (errc::certificate_key_mismatch otherwise).
/// - The key is a secret: an identity streams as its subject and thumbprint only, the PEM text
///   read is wiped, and OpenSSL clears the key's private numbers when the last copy goes.
/// - Copies share one immutable identity and compare equal. Connection pools keep the
///   connections of each identity apart (see send_options::identity): a certificate is only ever
///   presented on connections opened for it. Loading the same files twice makes two identities,
///   whose connections are pooled apart.
/// - A default-constructed identity is empty: no certificate is presented.
///
/// Thread safety: distinct objects safe; shared const objects safe.
class client_identity {
public:
    /// No certificate.
    client_identity() noexcept = default;

    /// Reads the certificate chain and the private key from PEM files (they may be one file).
    /// Errors: a file's open or read error; errc::invalid_client_certificate when the first file
    /// holds no certificate or the second no usable private key (public key only, encrypted,
    /// garbage, larger than 64 KiB); errc::certificate_key_mismatch when the key is not the
    /// certificate's. The message names no key material.
    static boost::system::result<client_identity> load_pem_files(const std::filesystem::path& certificate_chain,
                                                                 const std::filesystem::path& private_key);

    /// Parses PEM text: the certificate chain, and the private key. Errors as for load_pem_files.
    static boost::system::result<client_identity> from_pem(std::string_view certificate_chain, const secret& private_key);

    /// Whether a certificate is set.
    bool empty() const noexcept { return !impl_; }
    /// Whether a certificate is set.
    explicit operator bool() const noexcept { return !empty(); }

    /// The certificate's RFC 8705 thumbprint, `x5t#S256`: base64url of the SHA-256 of its DER
    /// encoding, as a certificate-bound token's `cnf` claim carries it. Empty when empty().
    std::string_view thumbprint() const noexcept;
    /// The certificate's subject, in RFC 2253 form (e.g. `CN=svc,O=Example`). Empty when empty().
    std::string_view subject() const noexcept;

    /// The same identity (a copy of the same load), or both empty.
    friend bool operator==(const client_identity& a, const client_identity& b) noexcept { return a.impl_ == b.impl_; }

    /// Writes `client_identity(<subject>, x5t#S256=<thumbprint>)`, or `client_identity()`; never
    /// key material.
    friend std::ostream& operator<<(std::ostream& os, const client_identity& id);

private:
    friend struct tokenflight::detail::access;
    struct impl;
    explicit client_identity(std::shared_ptr<const impl> p) noexcept : impl_(std::move(p)) {}
    std::shared_ptr<const impl> impl_;
};

/// RFC 8705's certificate thumbprint, `x5t#S256`: base64url (unpadded) of the SHA-256 of a
/// certificate's DER encoding. What a resource server compares with a bound token's `cnf`.
std::string certificate_thumbprint(std::string_view certificate_der);

} // namespace tokenflight::http

#endif
