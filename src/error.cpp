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
        case errc::unsupported_token_type: return "token endpoint: token_type is not a string";
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
    return ec.category() == error_category() && ec.value() >= static_cast<int>(errc::invalid_request) &&
           ec.value() <= static_cast<int>(errc::oauth_error);
}

bool is_transient(const error_code& ec) noexcept {
    namespace ae = boost::asio::error;
    if (ec.category() == error_category()) {
        switch (static_cast<errc>(ec.value())) {
        case errc::connect_timeout:
        case errc::request_timeout:
        case errc::queue_timeout:
        case errc::connection_closed:
        case errc::server_unavailable: return true;
        default: return false;
        }
    }
    return ec == ae::connection_refused || ec == ae::connection_reset || ec == ae::connection_aborted ||
           ec == ae::timed_out || ec == ae::host_unreachable || ec == ae::network_unreachable ||
           ec == ae::network_down || ec == ae::broken_pipe || ec == ae::eof ||
           ec == ae::host_not_found_try_again || ec == boost::beast::error::timeout ||
           ec == boost::asio::ssl::error::stream_truncated;
}

std::string diagnostics::to_string() const {
    std::string out;
    if (http_status != 0) out += "HTTP " + std::to_string(http_status);
    if (!oauth_error.empty()) out += (out.empty() ? "" : ", ") + oauth_error;
    if (!error_description.empty()) out += (out.empty() ? "" : ": ") + error_description;
    if (out.empty() && !body_excerpt.empty()) out = "body: " + body_excerpt;
    return out;
}

} // namespace tokenflight
