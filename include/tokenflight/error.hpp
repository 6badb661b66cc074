#ifndef TOKENFLIGHT_ERROR_HPP
#define TOKENFLIGHT_ERROR_HPP

#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>

/// @file
/// tokenflight's error codes, the diagnostics that travel with them, and retry classification.

namespace tokenflight {

using boost::system::error_code;

/// Errors raised by tokenflight itself. Network errors and TLS failures other than certificate
/// verification keep their Asio/OpenSSL codes.
enum class errc {
    // --- RFC 6749 section 5.2 error responses from the token endpoint ---
    invalid_request = 1,    ///< `invalid_request`
    invalid_client,         ///< `invalid_client`: wrong client id or secret (permanent)
    invalid_grant,          ///< `invalid_grant` (permanent)
    unauthorized_client,    ///< `unauthorized_client` (permanent)
    unsupported_grant_type, ///< `unsupported_grant_type` (permanent)
    invalid_scope,          ///< `invalid_scope` (permanent)
    oauth_error,            ///< any other `error` value; the value is in diagnostics::oauth_error

    // --- token endpoint responses that are not a usable token ---
    token_endpoint_status,  ///< non-2xx (other than 5xx/429) status without an OAuth error body
    server_unavailable,     ///< 5xx or 429 status without an OAuth error body (transient)
    malformed_response,     ///< body is not JSON (HTML error page, truncated JSON, ...)
    missing_access_token,   ///< JSON without a string `access_token`
    bad_expires_in,         ///< `expires_in` (or `expires_on`) is present but not a usable number
    unsupported_token_type, ///< `token_type` not a string; or not `Bearer` where the client takes its
                            ///< Authorization scheme from it (RFC 6749 section 7.1)

    // --- configuration ---
    missing_credentials,    ///< no client id / secret / token URL where one was needed
    invalid_url,            ///< URL does not parse or has no host
    unsupported_scheme,     ///< URL scheme is neither http nor https
    insecure_transport,     ///< a secret or token would go over plain http to a non-loopback host

    // --- transport ---
    connect_timeout,        ///< TCP connect (and TLS handshake) did not finish in time
    request_timeout,        ///< the whole request did not finish in time
    queue_timeout,          ///< waited too long for a free connection
    header_too_large,       ///< response header over the configured limit
    body_too_large,         ///< response body over the configured limit
    connection_closed,      ///< peer closed or reset the connection before a complete response
    closed,                 ///< the pool, source or client was closed

    // --- added in the hardening release; grouped here so that earlier values keep their numbers ---
    temporarily_unavailable, ///< OAuth `temporarily_unavailable` (transient, whatever the status)
    server_error,           ///< OAuth `server_error` (transient, whatever the status)
    invalid_token_response, ///< an access_token that is not visible ASCII, or a token_type that is
                            ///< not an RFC 9110 token: never usable in a header (permanent)
    invalid_header_name,    ///< a request header name that is not an RFC 9110 token; nothing sent
    invalid_header_value,   ///< a request header value with CR, LF, NUL or another control; nothing sent
    invalid_request_target, ///< a request target with spaces or controls; nothing sent
    invalid_method,         ///< a request method that is not an RFC 9110 token; nothing sent
    refresh_backoff,        ///< a reactive refresh is held back: refreshing did not fix the 401s
                            ///< before (see client); the 401 stands

    // --- TLS certificate verification, from OpenSSL's verify result (permanent) ---
    tls_untrusted_certificate, ///< the server's chain does not lead to a trusted CA (unknown
                               ///< issuer, self-signed); see tls_options::ca_file
    tls_name_mismatch,      ///< the certificate is not for the host name or IP address connected to
    tls_certificate_expired,///< a certificate of the chain has expired or is not yet valid
    tls_verification_failed,///< any other verification failure (bad signature, purpose, revoked, ...)
};

/// The error category of tokenflight::errc.
const boost::system::error_category& error_category() noexcept;

/// Makes an error_code from an errc (found by ADL).
inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// True for failures worth retrying after a pause: connect errors, timeouts, resets and
/// `server_unavailable` (5xx, 429). Permanent OAuth errors (`invalid_client`, ...) are not.
bool is_transient(const error_code& ec) noexcept;

/// True when the error is an OAuth 2.0 section 5.2 error response (the first block of errc,
/// temporarily_unavailable and server_error).
bool is_oauth_error(const error_code& ec) noexcept;

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
    void clear() { *this = diagnostics{}; }
};

} // namespace tokenflight

template <>
struct boost::system::is_error_code_enum<tokenflight::errc> : std::true_type {};

#endif
