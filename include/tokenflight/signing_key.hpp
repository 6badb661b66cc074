#ifndef TOKENFLIGHT_SIGNING_KEY_HPP
#define TOKENFLIGHT_SIGNING_KEY_HPP

#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

/// @file
/// Private keys that sign JWTs (client assertions), and the JWS algorithms they sign with.

struct evp_pkey_st; // OpenSSL's EVP_PKEY

namespace tokenflight {

/// JWS signature algorithms (RFC 7518 section 3) tokenflight signs with.
enum class jws_alg {
    rs256, ///< RSASSA-PKCS1-v1_5 with SHA-256 (RSA key of 2048 bits or more)
    ps256, ///< RSASSA-PSS with SHA-256, MGF1 with SHA-256, 32-byte salt (RSA key)
    es256, ///< ECDSA on P-256 with SHA-256 (EC P-256 key)
    hs256, ///< HMAC with SHA-256, keyed with the client secret (`client_secret_jwt`)
};

/// The algorithm's JWS name: "RS256", "PS256", "ES256", "HS256".
std::string_view to_string(jws_alg a) noexcept;

/// The algorithm with that JWS name (case-sensitive, as in a JOSE header); nullopt for others.
std::optional<jws_alg> parse_jws_alg(std::string_view name) noexcept;

/// A private key that signs: RSA (2048 bits or more) or EC on P-256.
///
/// - Loaded from PEM (PKCS#8 `PRIVATE KEY`, or the traditional `RSA PRIVATE KEY` and
///   `EC PRIVATE KEY`). An encrypted PEM is refused, never prompted for.
/// - The private key is a secret: it streams as its type and size only, the PEM text read is
///   wiped, and OpenSSL clears the key's private numbers when the last copy is destroyed.
/// - Copies share one immutable key: copying is cheap, and a key may sign from several threads
///   at once.
///
/// Thread safety: distinct objects safe; shared const objects safe.
class signing_key {
public:
    /// What kind of key it is.
    enum class kind {
        rsa,      ///< RSA; signs RS256 and PS256
        ec_p256,  ///< EC on P-256; signs ES256
    };

    /// Reads a PEM private key file.
    /// Errors: the file's open or read error; errc::invalid_signing_key when it holds no
    /// private key tokenflight can sign with (public key, certificate, encrypted key, RSA under
    /// 2048 bits, another curve). The message names no key material.
    static boost::system::result<signing_key> load_pem_file(const std::filesystem::path& path);

    /// Parses PEM text holding a private key. Errors as for load_pem_file.
    static boost::system::result<signing_key> from_pem(const secret& pem);

    /// A new random EC P-256 key (for DPoP proofs, or for tests).
    static signing_key generate_p256();

    /// The key's kind.
    kind type() const noexcept;
    /// The key size in bits (2048... for RSA, 256 for P-256).
    int bits() const noexcept;
    /// The algorithm a JWT gets when none is configured: RS256 for RSA, ES256 for P-256.
    jws_alg default_alg() const noexcept;
    /// Can this key sign with `a`?
    bool supports(jws_alg a) const noexcept;

    /// Signs `input` (a JWS signing input, `header.payload`) with `a`: the raw JWS signature
    /// (for ES256 the 64-byte `r || s` of RFC 7518 section 3.4, not DER).
    /// Errors: errc::key_algorithm_mismatch when the key cannot sign with `a` (HS256 included);
    /// errc::invalid_signing_key when OpenSSL refuses.
    boost::system::result<std::string> sign(jws_alg a, std::string_view input) const;

    /// The public half as a JWK (RFC 7517) JSON object: `kty`, and `n`/`e` or `crv`/`x`/`y`;
    /// nothing private. What to register with an authorization server's client `jwks`.
    std::string public_jwk() const;

    /// The RFC 7638 thumbprint of the public JWK (base64url of its SHA-256), as DPoP's `jkt`.
    std::string jwk_thumbprint() const;

    /// Writes the kind and size, e.g. `signing_key(RSA 2048)`; never key material.
    friend std::ostream& operator<<(std::ostream& os, const signing_key& k);

private:
    struct impl;
    explicit signing_key(std::shared_ptr<const impl> p) noexcept : impl_(std::move(p)) {}
    // Takes ownership of `pkey`; refuses what tokenflight does not sign with.
    static boost::system::result<signing_key> adopt(evp_pkey_st* pkey);
    std::shared_ptr<const impl> impl_;
};

/// HMAC-SHA-256 of `input` keyed with `key`: the raw HS256 signature.
std::string hs256_sign(const secret& key, std::string_view input);

/// base64url without padding (RFC 7515 section 2), as JWTs carry every part.
std::string base64url_encode(std::string_view bytes);

} // namespace tokenflight

#endif
