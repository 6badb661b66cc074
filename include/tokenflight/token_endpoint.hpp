#ifndef TOKENFLIGHT_TOKEN_ENDPOINT_HPP
#define TOKENFLIGHT_TOKEN_ENDPOINT_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/http/message.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

/// @file
/// RFC 6749 section 4.4 token requests and section 5.1 / 5.2 responses, without any I/O.

namespace tokenflight {

/// Where a token's lifetime came from.
enum class lifetime_source { expires_in, expires_on, jwt_exp, configured_default };

/// A successful (section 5.1) token response.
struct token_response {
    std::string access_token; ///< the token itself (visible ASCII only; checked by the parser)
    std::string token_type;   ///< "Bearer" when the server sent none
    std::string scope;        ///< as granted, may be empty
    /// How long the token is valid, counted from when the request was sent.
    std::chrono::seconds lifetime{0};
    lifetime_source lifetime_from = lifetime_source::expires_in; ///< where `lifetime` came from
    std::optional<std::chrono::seconds> refresh_in; ///< server's hint for when to refresh
};

/// The method a token request for `creds` starts with, after checking that the credentials
/// hold what it needs: `automatic` becomes `private_key_jwt` when an assertion key is set, else
/// `tls_client_auth` when a certificate is set and no secret.
/// Errors: errc::missing_credentials (no client id; no secret where one is sent or signs; no
/// key for `private_key_jwt`; no certificate for `tls_client_auth` and
/// `self_signed_tls_client_auth`), errc::key_algorithm_mismatch (an assertion algorithm the key
/// cannot sign with, or other than HS256 for `client_secret_jwt`), errc::invalid_signing_key
/// (a `client_secret_jwt` secret under 32 bytes, RFC 7518 section 3.2; an assertion lifetime
/// that is not positive).
boost::system::result<client_auth> effective_client_auth(const credentials& creds);

/// One client assertion (RFC 7523 section 2.2) for `method` (`private_key_jwt` or
/// `client_secret_jwt`): header `alg`, `typ` JWT and `kid` when configured; claims `iss` = `sub`
/// = the client id, `aud` = `audience`, `jti`, `iat` = `now`, `exp` = `now` +
/// client_assertion_options::lifetime. A secret: it authenticates the client until it expires.
/// Errors: as effective_client_auth, and errc::invalid_signing_key when signing fails.
boost::system::result<secret> make_client_assertion(const credentials& creds, client_auth method,
                                                    std::string_view audience,
                                                    std::chrono::system_clock::time_point now, std::string_view jti);

/// A fresh `jti`: 128 random bits from OpenSSL's generator, base64url.
std::string random_jti();

/// Builds the token request as the provider guide does: `POST`,
/// `Content-Type: application/x-www-form-urlencoded`, `grant_type=client_credentials`, the
/// `client_id`, the scope and extra parameters, and the client authentication of `method`
/// (`automatic` is resolved by the caller, see effective_client_auth).
///
/// With `basic`, id and secret are form-urlencoded before base64 (RFC 6749 section 2.3.1). With
/// `private_key_jwt` and `client_secret_jwt`, `client_assertion` (from make_client_assertion) is
/// sent with `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
/// With `tls_client_auth` and `self_signed_tls_client_auth` the form names the client and
/// nothing else authenticates it: the certificate does, in the TLS handshake.
http::request make_token_request(const credentials& creds, client_auth method, std::string_view host,
                                 std::string_view target, const secret& client_assertion = secret());

/// Parses a token endpoint response.
///
/// - 2xx with a JSON object holding a string `access_token`: success. `expires_in` may be a number
///   or a numeric string; when absent, `expires_on` (epoch seconds), then a JWT access token's
///   `exp` claim, then `default_lifetime` is used.
/// - A JSON object with an `error` member is an error whatever the status (RFC 6749 section 5.2),
///   mapped to oauth_errc::invalid_client etc. (`temporarily_unavailable` and `server_error` to their
///   own, transient codes); `error_description` / `error_uri` go to `diag`. Under a 5xx or 429
///   status the result is errc::server_unavailable (transient) whatever the body says, with the
///   OAuth error still in `diag`.
/// - An `access_token` with any byte outside visible ASCII (0x21-0x7E), or a `token_type` that is
///   not an RFC 9110 token, is errc::invalid_token_response: it could not go into a header.
/// - Otherwise: errc::server_unavailable (5xx, 429), errc::token_endpoint_status (other non-2xx),
///   errc::malformed_response (not JSON), errc::missing_access_token, errc::bad_expires_in.
///
/// `diag` receives the status and a short printable excerpt of the body with `scrub_secret`
/// (the secret, or a redactor that also knows the Basic credential) masked out; server texts are
/// stripped of control characters. `now` is the wall-clock time the request was sent (for `expires_on` and `exp`).
boost::system::result<token_response>
parse_token_response(unsigned status, std::string_view body, std::chrono::system_clock::time_point now,
                     std::chrono::seconds default_lifetime, const redactor& scrub_secret, diagnostics& diag);

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date relative to `now`.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

/// application/x-www-form-urlencoded encoding of one name or value (space as '+').
std::string form_urlencode(std::string_view s);

/// Standard base64 (with padding), as HTTP Basic needs.
std::string base64_encode(std::string_view s);

/// Decodes base64 or base64url (either alphabet, padding optional, as in HTTP Basic and in a JWT);
/// nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view s);

} // namespace tokenflight

#endif
