#ifndef TOKENFLIGHT_DPOP_HPP
#define TOKENFLIGHT_DPOP_HPP

#include <tokenflight/http/url.hpp>
#include <tokenflight/signing_key.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

/// @file
/// DPoP (RFC 9449): proofs of possession of a key, sent with token requests and API requests.

namespace tokenflight {

/// DPoP for a token source: every token request and every API request sent with its tokens
/// carries a proof signed with this key, and the tokens are bound to it (`token_type` DPoP).
struct dpop_options {
    bool enabled = false; ///< send DPoP proofs
    /// The key proofs are signed with; by default a fresh EC P-256 key made for the source (one
    /// key per source: its tokens are bound to it). RSA keys sign RS256 unless `alg` says PS256.
    std::optional<signing_key> key;
    std::optional<jws_alg> alg; ///< default: the key's (ES256 for P-256)
};

/// Signs DPoP proof JWTs (RFC 9449 section 4.2) with one key. The header (`typ` dpop+jwt, `alg`,
/// the public `jwk`) is encoded once; each proof costs a small JSON claims object and one
/// signature (for ES256, one P-256 ECDSA signature: see benchmarks/README.md).
///
/// Thread safety: proof() may be called concurrently.
class dpop_prover {
public:
    /// Errors at construction: none; an algorithm the key cannot sign with makes every proof()
    /// fail with errc::key_algorithm_mismatch.
    explicit dpop_prover(signing_key key, std::optional<jws_alg> alg = std::nullopt);

    /// A proof for one request: claims `jti`, `htm` (the method), `htu` (the URL without query
    /// and fragment, see dpop_htu), `iat` = `now`, and `nonce` and `ath` (base64url SHA-256 of
    /// the access token) when not empty.
    boost::system::result<std::string> proof(std::string_view htm, std::string_view htu,
                                             std::chrono::system_clock::time_point now, std::string_view jti,
                                             std::string_view nonce = {}, std::string_view access_token = {}) const;

    /// The key's RFC 7638 thumbprint: what a server binds the tokens to (`cnf.jkt`).
    const std::string& jkt() const noexcept { return jkt_; }
    /// The signing algorithm.
    jws_alg alg() const noexcept { return alg_; }

private:
    signing_key key_;
    jws_alg alg_;
    std::string header_; // base64url of the header JSON, then '.'
    std::string jkt_;
};

/// The `htu` of a request: scheme, host, port (omitted when the scheme's default) and path,
/// without query and fragment (RFC 9449 section 4.2).
std::string dpop_htu(const http::origin& origin, std::string_view target);

/// Server-provided DPoP nonces (RFC 9449 section 8), one per origin: the latest one seen in a
/// `DPoP-Nonce` response header is sent in every later proof to that origin.
///
/// Thread safety: all member functions may be called concurrently.
class dpop_nonces {
public:
    /// The nonce for `o`; empty when none was seen.
    std::string get(const http::origin& o) const;
    /// Remembers `nonce` for `o`. Returns true when it differs from the one held.
    /// A nonce that is not a visible-ASCII token (RFC 9449: NQCHAR) is ignored.
    bool update(const http::origin& o, std::string_view nonce);

private:
    mutable std::mutex mutex_;
    std::map<http::origin, std::string> nonces_;
};

} // namespace tokenflight

#endif
