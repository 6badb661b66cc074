#ifndef TOKENFLIGHT_ERROR_HPP
#define TOKENFLIGHT_ERROR_HPP

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

/// @file
/// tokenflight's error codes (OAuth errors the server reported, errors found on the client's
/// side), the conditions that classify them, and the diagnostics that travel with them.

namespace tokenflight {

using boost::system::error_code;

/// Error responses of an OAuth 2.0 authorization server (RFC 6749 section 5.2): what the
/// token endpoint answered in its `error` member. Category: oauth_category(). The exact
/// `error`, `error_description` and `error_uri` are in diagnostics.
enum class oauth_errc {
    invalid_request = 1,     ///< `invalid_request`
    invalid_client,          ///< `invalid_client`: wrong client id or secret (permanent)
    invalid_grant,           ///< `invalid_grant` (permanent)
    unauthorized_client,     ///< `unauthorized_client` (permanent)
    unsupported_grant_type,  ///< `unsupported_grant_type` (permanent)
    invalid_scope,           ///< `invalid_scope` (permanent)
    temporarily_unavailable, ///< `temporarily_unavailable` (transient, whatever the status)
    server_error,            ///< `server_error` (transient, whatever the status)
    use_dpop_nonce,          ///< `use_dpop_nonce` (RFC 9449): a proof must carry the server's nonce;
                             ///< retried once at once with the nonce of its DPoP-Nonce header
    invalid_dpop_proof,      ///< `invalid_dpop_proof` (RFC 9449, permanent)
    other,                   ///< any other `error` value; the value is in diagnostics::oauth_error
};

/// Errors found on the client's side: configuration refused, a server answer that is not
/// usable, transport failures and limits, TLS verification. Category: error_category().
/// Socket and TLS errors other than certificate verification keep their Asio/OpenSSL codes.
enum class errc {
    // --- a token endpoint answer that is not a usable token (and not an OAuth error) ---
    token_endpoint_status = 1, ///< non-2xx (other than 5xx/429) status without an OAuth error body
    server_unavailable,     ///< 5xx or 429 status without an OAuth error body (transient)
    malformed_response,     ///< body is not JSON (HTML error page, truncated JSON, ...)
    missing_access_token,   ///< JSON without a string `access_token`
    bad_expires_in,         ///< `expires_in` (or `expires_on`) is present but not a usable number
    unsupported_token_type, ///< `token_type` not a string; or not `Bearer` where the client takes its
                            ///< Authorization scheme from it (RFC 6749 section 7.1)
    invalid_token_response, ///< an access_token that is not visible ASCII, or a token_type that is
                            ///< not an RFC 9110 token: never usable in a header (permanent)
    issuer_mismatch,        ///< discovery: the metadata names another issuer than the one configured
    bad_metadata,           ///< discovery: no usable metadata document (status, JSON, token_endpoint)

    // --- configuration and caller input, refused before anything is sent ---
    missing_credentials,    ///< no client id / secret / token URL where one was needed
    invalid_url,            ///< URL does not parse or has no host
    unsupported_scheme,     ///< URL scheme is neither http nor https
    insecure_transport,     ///< a secret or token would go over plain http to a non-loopback host
    invalid_header_name,    ///< a request header name that is not an RFC 9110 token; nothing sent
    invalid_header_value,   ///< a request header value with CR, LF, NUL or another control; nothing sent
    invalid_request_target, ///< a request target with spaces or controls; nothing sent
    invalid_method,         ///< a request method that is not an RFC 9110 token; nothing sent
    invalid_signing_key,    ///< a client-assertion key that cannot sign: not a PEM private key,
                            ///< encrypted, RSA under 2048 bits, a curve other than P-256, an
                            ///< HS256 secret under 32 bytes; or an assertion lifetime <= 0
    key_algorithm_mismatch, ///< the configured JWS algorithm does not fit the key or the client
                            ///< authentication method (e.g. ES256 with an RSA key)
    invalid_proxy,          ///< a proxy URL that is not http://[user:password@]host[:port]
    invalid_client_certificate, ///< a TLS client certificate or key that cannot be used: no
                                ///< certificate in the PEM, no usable (unencrypted) private key
    certificate_key_mismatch,   ///< the TLS client private key is not the certificate's
    token_not_shareable,    ///< a shared token store with sender-constrained tokens (DPoP, or a
                            ///< client certificate, RFC 8705): no other process could use them

    // --- transport ---
    connect_timeout,        ///< TCP connect (and TLS handshake) did not finish in time
    request_timeout,        ///< the whole request did not finish in time
    queue_timeout,          ///< waited too long for a free connection
    header_too_large,       ///< response header over the configured limit
    body_too_large,         ///< response body over the configured limit
    connection_closed,      ///< peer closed or reset the connection before a complete response
    proxy_refused,          ///< the proxy answered the CONNECT tunnel with a non-2xx status
    closed,                 ///< the pool, source or client was closed

    // --- the token layer ---
    refresh_backoff,        ///< a reactive refresh is held back: refreshing did not fix the 401s
                            ///< before (see client); the 401 stands

    // --- TLS certificate verification, from OpenSSL's verify result (permanent) ---
    tls_untrusted_certificate, ///< the server's chain does not lead to a trusted CA (unknown
                               ///< issuer, self-signed); see http::tls_options::ca_file
    tls_name_mismatch,      ///< the certificate is not for the host name or IP address connected to
    tls_certificate_expired,///< a certificate of the chain has expired or is not yet valid
    tls_verification_failed,///< any other verification failure (bad signature, purpose, revoked, ...)

    // --- HTTP/2 streams and connections (http::pool_options::version; transient) ---
    stream_reset,           ///< the server reset the request's stream (RST_STREAM other than REFUSED_STREAM)
    stream_refused,         ///< the server left the stream unprocessed (REFUSED_STREAM, or above a
                            ///< GOAWAY's last stream id) more often than http2_options::max_resends
    http2_protocol_error,   ///< the HTTP/2 connection failed: a protocol error or a flood from the
                            ///< server, too many CONTINUATION frames, or no answer to a PING
};

/// Classes of errors, whatever their category: compare with `ec == condition::transient`.
enum class condition {
    /// Worth retrying after a pause: connect errors, timeouts, resets, 5xx/429
    /// (errc::server_unavailable), OAuth `temporarily_unavailable` and `server_error`.
    transient = 1,
    /// The authorization server answered with an OAuth error (any oauth_errc).
    oauth_error,
    /// Refused before anything was sent: the configuration or the caller's input is wrong
    /// (missing credentials, a bad URL, plain http to a remote host, a header that would inject).
    configuration,
    /// A server's answer that cannot be used: a token response that is not a token, a response
    /// over the size limits.
    bad_response,
    /// The server's TLS certificate failed verification (errc::tls_*).
    tls_verification,
};

/// The category of oauth_errc ("tokenflight.oauth").
const boost::system::error_category& oauth_category() noexcept;
/// The category of errc ("tokenflight").
const boost::system::error_category& error_category() noexcept;
/// The category of condition ("tokenflight.condition").
const boost::system::error_category& condition_category() noexcept;

/// Makes an error_code from an oauth_errc (found by ADL).
inline error_code make_error_code(oauth_errc e) noexcept {
    return {static_cast<int>(e), oauth_category()};
}
/// Makes an error_code from an errc (found by ADL).
inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}
/// Makes an error_condition from a condition (found by ADL).
inline boost::system::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The enumerator's name ("invalid_client"), for logs, metrics labels and JSON; "unknown" for a
/// value outside the enumeration.
std::string_view to_string(oauth_errc e) noexcept;
/// The enumerator's name ("request_timeout"); "unknown" for a value outside the enumeration.
std::string_view to_string(errc e) noexcept;
/// The enumerator's name ("transient"); "unknown" for a value outside the enumeration.
std::string_view to_string(condition c) noexcept;

/// `ec == condition::transient`.
bool is_transient(const error_code& ec) noexcept;

/// Replaces, in server-supplied text about to reach a message or a terminal, every control
/// character (C0, DEL, and C1 whether raw or UTF-8 encoded) and every byte that is not part of
/// valid UTF-8 by '?': no ESC, BEL or CR from a server can drive the reader's terminal.
void strip_controls(std::string& text) noexcept;

/// Context that accompanies an error: what the server said, never what we sent.
///
/// Every string is bounded in length and scrubbed of the client secret before it is stored, so a
/// diagnostics object is safe to log whole.
struct diagnostics {
    int http_status = 0;                ///< HTTP status of the failing response, 0 if none arrived
    std::string oauth_error;            ///< RFC 6749 section 5.2 `error`
    std::string error_description;      ///< RFC 6749 section 5.2 `error_description`
    std::string error_uri;              ///< RFC 6749 section 5.2 `error_uri`
    std::string body_excerpt;           ///< at most 256 bytes of the response body, printable ASCII only
    std::optional<std::chrono::seconds> retry_after; ///< from a `Retry-After` header
    int attempts = 0;                   ///< token requests made by the failing refresh

    /// One line for logs: status, OAuth error and description, control characters stripped.
    std::string to_string() const;
    /// Empties every field.
    void clear() { *this = diagnostics{}; }
};

/// A failure with what the server said about it: the exception that operations completed
/// through tokenflight::with_diagnostics throw (with `use_awaitable`, `use_future`, ...) in
/// place of a bare boost::system::system_error. `what()` is the diagnostics' one-line summary
/// followed by the code's message; neither ever carries a secret.
class error_with_diagnostics : public boost::system::system_error {
public:
    /// `ec` with `diag` (copied).
    error_with_diagnostics(error_code ec, diagnostics diag);
    /// What the server said (empty for failures without a server answer).
    const diagnostics& get_diagnostics() const noexcept { return diag_; }

private:
    diagnostics diag_;
};

} // namespace tokenflight

/// @cond
namespace boost::system {
template <>
struct is_error_code_enum<tokenflight::errc> : std::true_type {};
template <>
struct is_error_code_enum<tokenflight::oauth_errc> : std::true_type {};
template <>
struct is_error_condition_enum<tokenflight::condition> : std::true_type {};
} // namespace boost::system
/// @endcond

#endif
