#include <tokenflight/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace tokenflight {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "tokenflight"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::invalid_request: return "token endpoint: invalid_request";
        case errc::invalid_client: return "token endpoint: invalid_client (client authentication failed)";
        case errc::invalid_grant: return "token endpoint: invalid_grant";
        case errc::unauthorized_client: return "token endpoint: unauthorized_client";
        case errc::unsupported_grant_type: return "token endpoint: unsupported_grant_type";
        case errc::invalid_scope: return "token endpoint: invalid_scope";
        case errc::oauth_error: return "token endpoint: OAuth error response";
        case errc::token_endpoint_status: return "token endpoint: unexpected HTTP status";
        case errc::server_unavailable: return "server unavailable (HTTP 5xx or 429)";
        case errc::malformed_response: return "token endpoint: response body is not JSON";
        case errc::missing_access_token: return "token endpoint: response has no access_token";
        case errc::bad_expires_in: return "token endpoint: expires_in is not a number of seconds";
        case errc::unsupported_token_type: return "token_type is not a string, or not Bearer and no auth_scheme was set";
        case errc::missing_credentials: return "credentials: client id, secret or token URL missing";
        case errc::invalid_url: return "invalid URL";
        case errc::unsupported_scheme: return "URL scheme must be http or https";
        case errc::insecure_transport:
            return "refusing to send credentials over plain http to a non-loopback host";
        case errc::connect_timeout: return "connect timed out";
        case errc::request_timeout: return "request timed out";
        case errc::queue_timeout: return "timed out waiting for a free connection";
        case errc::header_too_large: return "response header exceeds the limit";
        case errc::body_too_large: return "response body exceeds the limit";
        case errc::connection_closed: return "connection closed before a complete response";
        case errc::closed: return "closed";
        case errc::temporarily_unavailable: return "token endpoint: temporarily_unavailable";
        case errc::server_error: return "token endpoint: server_error";
        case errc::invalid_token_response:
            return "token endpoint: access_token or token_type has characters a header cannot carry";
        case errc::invalid_header_name: return "request header name is not an RFC 9110 token";
        case errc::invalid_header_value: return "request header value contains CR, LF, NUL or a control character";
        case errc::invalid_request_target: return "request target contains spaces or control characters";
        case errc::invalid_method: return "request method is not an RFC 9110 token";
        case errc::refresh_backoff: return "token refresh held back: new tokens did not stop the 401s";
        case errc::tls_untrusted_certificate: return "TLS: the server's certificate is not signed by a trusted CA";
        case errc::tls_name_mismatch: return "TLS: the server's certificate is for another host name or address";
        case errc::tls_certificate_expired: return "TLS: the server's certificate has expired or is not yet valid";
        case errc::tls_verification_failed: return "TLS: the server's certificate failed verification";
        }
        return "tokenflight: unknown error " + std::to_string(ev);
    }
};

} // namespace

const boost::system::error_category& error_category() noexcept {
    static const category_impl instance;
    return instance;
}

bool is_oauth_error(const error_code& ec) noexcept {
    if (ec.category() != error_category()) return false;
    return (ec.value() >= static_cast<int>(errc::invalid_request) && ec.value() <= static_cast<int>(errc::oauth_error)) ||
           ec == errc::temporarily_unavailable || ec == errc::server_error;
}

bool is_transient(const error_code& ec) noexcept {
    namespace ae = boost::asio::error;
    if (ec.category() == error_category()) {
        switch (static_cast<errc>(ec.value())) {
        case errc::connect_timeout:
        case errc::request_timeout:
        case errc::queue_timeout:
        case errc::connection_closed:
        case errc::server_unavailable:
        case errc::temporarily_unavailable:
        case errc::server_error: return true;
        default: return false;
        }
    }
    return ec == ae::connection_refused || ec == ae::connection_reset || ec == ae::connection_aborted ||
           ec == ae::timed_out || ec == ae::host_unreachable || ec == ae::network_unreachable ||
           ec == ae::network_down || ec == ae::broken_pipe || ec == ae::eof ||
           ec == ae::host_not_found_try_again || ec == boost::beast::error::timeout ||
           ec == boost::asio::ssl::error::stream_truncated;
}

void strip_controls(std::string& text) noexcept {
    auto* p = reinterpret_cast<unsigned char*>(text.data());
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F) p[i] = '?';
            ++i;
            continue;
        }
        // A UTF-8 sequence: its length from the lead byte, then continuation bytes, no overlong
        // two-byte form, and no C1 control (U+0080..U+009F, which some terminals obey).
        const std::size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = len != 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && c == 0xC2 && p[i + 1] < 0xA0) ok = false;
        if (!ok) {
            p[i] = '?';
            ++i;
            continue;
        }
        i += len;
    }
}

std::string diagnostics::to_string() const {
    std::string out;
    if (http_status != 0) out += "HTTP " + std::to_string(http_status);
    if (!oauth_error.empty()) out += (out.empty() ? "" : ", ") + oauth_error;
    if (!error_description.empty()) out += (out.empty() ? "" : ": ") + error_description;
    if (out.empty() && !body_excerpt.empty()) out = "body: " + body_excerpt;
    strip_controls(out); // the fields are public: whoever filled them, the line stays inert
    return out;
}

} // namespace tokenflight
