// The shared token store's record, without I/O: how a token is sealed before it goes to Redis
// (AES-256-GCM under a key derived with HKDF-SHA256), how it is opened and checked, what the
// Redis keys are called (never after a secret), and the token id by which processes compare
// tokens without holding them.
#ifndef TOKENFLIGHT_FLEET_RECORD_HPP
#define TOKENFLIGHT_FLEET_RECORD_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokenflight::fleet {

/// A token as the fleet shares it. Times are absolute (system clock): processes share no
/// steady clock.
struct shared_token {
    secret value;
    std::string type;  ///< token_type, e.g. "Bearer"
    std::string scope; ///< granted scope, may be empty
    std::chrono::system_clock::time_point expires_at;
    std::string id;    ///< token_id(value)
    /// When its request was sent (the start of its life); the epoch when unknown.
    std::chrono::system_clock::time_point issued_at{};
};

/// The 256-bit key records are sealed with. Wiped on destruction.
class record_key {
public:
    static constexpr std::size_t size = 32;

    /// HKDF-SHA256 (RFC 5869) of `material` (a client secret, or bytes the user gives), salted
    /// with a fixed label and bound to `store_key` (the record's Redis key) as info: a key per
    /// record name, so one leaked key opens one record kind only.
    static record_key derive(std::string_view material, std::string_view store_key);

    record_key(const record_key&) = default;
    record_key& operator=(const record_key&) = default;
    ~record_key();

    const std::array<unsigned char, size>& bytes() const noexcept { return bytes_; }

private:
    record_key() = default;
    std::array<unsigned char, size> bytes_{};
};

/// A token's id: the first 128 bits of its SHA-256, base64url (22 characters). Enough to tell
/// tokens apart across a fleet; says nothing of the token.
std::string token_id(std::string_view token);

/// The Redis key names for one set of credentials: "<prefix>{<h>}:record", ":lease", ":events",
/// where h is a hash of the token URL (or issuer), client id, scope and extra parameters (the
/// token's audience or resource), never of a secret. The braces keep the three in one Redis
/// Cluster slot.
struct store_keys {
    std::string record, lease, channel;
};
store_keys keys_for(std::string_view prefix, const credentials& creds);

/// The most a record's plaintext may hold: seal() refuses more, open() reads no more.
inline constexpr std::size_t max_record_plaintext = 64 * 1024;

/// Whether `token` surely seals within max_record_plaintext (a token over a few KiB is not
/// shared: each process keeps its own).
bool fits_in_record(const shared_token& token);

/// The sealed record: "tf1" | 12-byte random nonce | AES-256-GCM ciphertext | 16-byte tag, with
/// the record's Redis key as additional data (a record copied under another key does not open).
/// Throws std::length_error for a token that does not fit_in_record().
std::string seal(const shared_token& token, const record_key& key, std::string_view store_key);

/// Opens a sealed record; fails (errc::malformed_response) for anything not sealed by seal()
/// with this key under this name: truncated, tampered, another key, another name, or a
/// plaintext that is not a well-formed record. A record that fails is ignored and overwritten.
boost::system::result<shared_token> open(std::string_view sealed, const record_key& key, std::string_view store_key);

/// open()'s check of a decrypted record: the JSON object seal() writes, with a visible-ASCII
/// token, an RFC 9110 token type, an expiry in range and the token's id; errc::malformed_response
/// otherwise. (The fuzz target fleet_record feeds it directly: through open(), random bytes never
/// get past the GCM tag.)
boost::system::result<shared_token> parse_record(std::string_view plain);

} // namespace tokenflight::fleet

#endif
