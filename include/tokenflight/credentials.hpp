#ifndef TOKENFLIGHT_CREDENTIALS_HPP
#define TOKENFLIGHT_CREDENTIALS_HPP

#include <tokenflight/http/client_identity.hpp>
#include <tokenflight/secret.hpp>
#include <tokenflight/signing_key.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// Client credentials for the RFC 6749 section 4.4 client-credentials grant.

namespace tokenflight {

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1, RFC 7523,
/// OpenID Connect Core section 9).
enum class client_auth {
    basic,     ///< `client_secret_basic`: HTTP Basic with form-urlencoded id and secret (default)
    post,      ///< `client_secret_post`: `client_id` and `client_secret` in the form body
    /// With credentials::assertion's key set: private_key_jwt. With a certificate and no
    /// secret: tls_client_auth. Otherwise try basic; on `invalid_client` retry once with post
    /// and remember what worked.
    automatic,
    /// `private_key_jwt`: a JWT signed with credentials::assertion's key (RS256, PS256, ES256);
    /// no client secret is needed or sent
    private_key_jwt,
    /// `client_secret_jwt`: a JWT signed HS256 with the client secret; the secret itself is not sent
    client_secret_jwt,
    /// `tls_client_auth` (RFC 8705 section 2.1): credentials::certificate, issued by a CA the
    /// server trusts, presented in the TLS handshake; the form carries only the client id
    tls_client_auth,
    /// `self_signed_tls_client_auth` (RFC 8705 section 2.2): as tls_client_auth, with a
    /// certificate the client registered itself (its `jwks`); the same request on the wire
    self_signed_tls_client_auth,
};

/// The method's registered name, e.g. "client_secret_basic", "private_key_jwt"; "automatic".
std::string_view to_string(client_auth a) noexcept;

/// How client assertions (RFC 7523 section 2.2) are made for `private_key_jwt` and
/// `client_secret_jwt`. Each token request carries a fresh one: `iss` = `sub` = the client id,
/// `aud`, a unique `jti` (128 random bits), `iat` and `exp` = `iat` + lifetime.
struct client_assertion_options {
    /// The client's private key (`private_key_jwt`); see signing_key::load_pem_file.
    std::optional<signing_key> key;
    /// The JWS algorithm; by default the key's (RS256 for RSA, ES256 for P-256), HS256 for
    /// `client_secret_jwt`. One the key cannot sign with is refused (errc::key_algorithm_mismatch).
    std::optional<jws_alg> alg;
    /// The `kid` header parameter, when the server needs it to pick the key; empty sends none.
    std::string kid;
    /// The `aud` claim. Empty: the token endpoint URL (RFC 7523). Some servers want the issuer.
    std::string audience;
    /// How long an assertion is valid; short, since each is used once.
    std::chrono::seconds lifetime{60};
};

/// Everything needed to ask a token endpoint for a token.
///
/// Streaming a credentials object prints the secret as `***`.
struct credentials {
    std::string token_url;  ///< https://... (http:// only to loopback unless allow_insecure_http)
    /// The authorization server's issuer identifier, used only when token_url is empty: then
    /// the token endpoint,
    /// and for client_auth::automatic the method, come from its metadata (RFC 8414, OpenID
    /// Connect Discovery), fetched before the first token request and again after a refresh
    /// that failed other than with an OAuth error. With DPoP, a server that lists its DPoP
    /// algorithms without the source's fails the refresh with errc::key_algorithm_mismatch.
    /// See discovery.hpp.
    std::string issuer;
    std::string client_id; ///< the client's identifier, as registered with the provider
    secret client_secret;   ///< the client's secret; prints as `***`
    std::string scope;      ///< space-separated scopes; empty sends no scope parameter
    /// Extra form parameters, e.g. {"audience", "..."} or {"resource", "..."}.
    std::vector<std::pair<std::string, std::string>> extra_params;
    client_auth auth = client_auth::basic; ///< how the client authenticates
    client_assertion_options assertion;   ///< for private_key_jwt and client_secret_jwt
    /// The client certificate for mutual TLS (RFC 8705): presented to the token endpoint (for
    /// tls_client_auth and self_signed_tls_client_auth, and so that the server may bind the
    /// tokens to it), and by every client of the token source on its API requests, as
    /// certificate-bound tokens need. With discovery, the metadata's `mtls_endpoint_aliases`
    /// token endpoint is used when it lists one.
    http::client_identity certificate{};
    /// Send the secret over plain http:// to a non-loopback host. Off unless you really mean it.
    bool allow_insecure_http = false;

    /// Reads TOKENFLIGHT_TOKEN_URL (or TOKENFLIGHT_ISSUER), TOKENFLIGHT_CLIENT_ID,
    /// TOKENFLIGHT_CLIENT_SECRET and (optionally) TOKENFLIGHT_SCOPE. When TOKENFLIGHT_CLIENT_SECRET is unset,
    /// TOKENFLIGHT_CLIENT_SECRET_FILE names a file holding the secret.
    /// Fails with errc::missing_credentials naming no secret value.
    static boost::system::result<credentials> from_env();

    /// Writes every field but the secret's value, which prints as `***`, and the keys' material
    /// (only the assertion key's type and size, the certificate's subject and thumbprint).
    friend std::ostream& operator<<(std::ostream& os, const credentials& c);
};

/// Reads a secret from a file: the first line, without the line ending and surrounding blanks.
/// Errors: the file's open error, or errc::missing_credentials for an empty file.
boost::system::result<secret> load_secret_file(const std::filesystem::path& path);

} // namespace tokenflight

#endif
