#include <tokenflight/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace tokenflight {
namespace {

// One table per enumeration: the name (to_string) and the message (error_category::message).
struct entry {
    std::string_view name, message;
};

constexpr entry oauth_entries[] = {
    {"invalid_request", "token endpoint: invalid_request"},
    {"invalid_client", "token endpoint: invalid_client (client authentication failed)"},
    {"invalid_grant", "token endpoint: invalid_grant"},
    {"unauthorized_client", "token endpoint: unauthorized_client"},
    {"unsupported_grant_type", "token endpoint: unsupported_grant_type"},
    {"invalid_scope", "token endpoint: invalid_scope"},
    {"temporarily_unavailable", "token endpoint: temporarily_unavailable"},
    {"server_error", "token endpoint: server_error"},
    {"use_dpop_nonce", "token endpoint: use_dpop_nonce (the DPoP proof must carry the server's nonce)"},
    {"invalid_dpop_proof", "token endpoint: invalid_dpop_proof"},
    {"other", "token endpoint: OAuth error response"},
};

constexpr entry client_entries[] = {
    {"token_endpoint_status", "token endpoint: unexpected HTTP status"},
    {"server_unavailable", "server unavailable (HTTP 5xx or 429)"},
    {"malformed_response", "token endpoint: response body is not JSON"},
    {"missing_access_token", "token endpoint: response has no access_token"},
    {"bad_expires_in", "token endpoint: expires_in is not a number of seconds"},
    {"unsupported_token_type", "token_type is not a string, or not Bearer and no auth_scheme was set"},
    {"invalid_token_response", "token endpoint: access_token or token_type has characters a header cannot carry"},
    {"issuer_mismatch", "discovery: the metadata's issuer is not the configured issuer"},
    {"bad_metadata", "discovery: no usable authorization server metadata"},
    {"missing_credentials", "credentials: client id, secret or token URL missing"},
    {"invalid_url", "invalid URL"},
    {"unsupported_scheme", "URL scheme must be http or https"},
    {"insecure_transport", "refusing to send credentials over plain http to a non-loopback host"},
    {"invalid_header_name", "request header name is not an RFC 9110 token"},
    {"invalid_header_value", "request header value contains CR, LF, NUL or a control character"},
    {"invalid_request_target", "request target contains spaces or control characters"},
    {"invalid_method", "request method is not an RFC 9110 token"},
    {"invalid_signing_key", "signing key: not a usable PEM private key (RSA >= 2048 bits or EC P-256, unencrypted)"},
    {"key_algorithm_mismatch", "signing key: the JWS algorithm does not fit the key or the authentication method"},
    {"invalid_proxy", "proxy URL is not http://[user:password@]host[:port]"},
    {"invalid_client_certificate", "TLS client certificate: no certificate, or no usable unencrypted private key, in the PEM"},
    {"certificate_key_mismatch", "TLS client certificate: the private key is not the certificate's"},
    {"token_not_shareable", "a shared token store cannot share sender-constrained (DPoP or certificate-bound) tokens"},
    {"connect_timeout", "connect timed out"},
    {"request_timeout", "request timed out"},
    {"queue_timeout", "timed out waiting for a free connection"},
    {"header_too_large", "response header exceeds the limit"},
    {"body_too_large", "response body exceeds the limit"},
    {"connection_closed", "connection closed before a complete response"},
    {"proxy_refused", "the proxy refused the tunnel (a non-2xx answer to CONNECT)"},
    {"closed", "closed"},
    {"refresh_backoff", "token refresh held back: new tokens did not stop the 401s"},
    {"tls_untrusted_certificate", "TLS: the server's certificate is not signed by a trusted CA"},
    {"tls_name_mismatch", "TLS: the server's certificate is for another host name or address"},
    {"tls_certificate_expired", "TLS: the server's certificate has expired or is not yet valid"},
    {"tls_verification_failed", "TLS: the server's certificate failed verification"},
    {"stream_reset", "HTTP/2: the server reset the stream"},
    {"stream_refused", "HTTP/2: the server refused the stream unprocessed, too often"},
    {"http2_protocol_error", "HTTP/2: the connection failed (protocol error, flood, or no answer to PING)"},
};

constexpr entry condition_entries[] = {
    {"transient", "transient failure: worth retrying after a pause"},
    {"oauth_error", "the authorization server answered with an OAuth error"},
    {"configuration", "refused before sending: configuration or caller input"},
    {"bad_response", "the server's answer cannot be used"},
    {"tls_verification", "the server's TLS certificate failed verification"},
};

static_assert(std::size(oauth_entries) == static_cast<std::size_t>(oauth_errc::other));
static_assert(std::size(client_entries) == static_cast<std::size_t>(errc::http2_protocol_error));
static_assert(std::size(condition_entries) == static_cast<std::size_t>(condition::tls_verification));

// Enumerations count from 1, in table order.
template <std::size_t N>
const entry* find(const entry (&table)[N], int ev) noexcept {
    return ev >= 1 && static_cast<std::size_t>(ev) <= N ? &table[ev - 1] : nullptr;
}

template <std::size_t N>
class table_category final : public boost::system::error_category {
public:
    constexpr table_category(const char* name, const entry (&table)[N]) noexcept : name_(name), table_(table) {}
    const char* name() const noexcept override { return name_; }
    std::string message(int ev) const override {
        if (const auto* e = find(table_, ev)) return std::string(e->message);
        return std::string(name_) + ": unknown error " + std::to_string(ev);
    }

private:
    const char* name_;
    const entry (&table_)[N];
};

class condition_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "tokenflight.condition"; }
    std::string message(int ev) const override {
        if (const auto* e = find(condition_entries, ev)) return std::string(e->message);
        return "tokenflight.condition: unknown " + std::to_string(ev);
    }
    bool equivalent(const error_code& ec, int cond) const noexcept override {
        switch (static_cast<condition>(cond)) {
        case condition::transient: return transient(ec);
        case condition::oauth_error: return ec.category() == tokenflight::oauth_category();
        case condition::configuration: return in(ec, errc::missing_credentials, errc::token_not_shareable);
        case condition::bad_response:
            // A 5xx/429 is the server being busy (transient), not an unusable answer.
            return (in(ec, errc::token_endpoint_status, errc::bad_metadata) &&
                    ec != errc::server_unavailable) ||
                   ec == errc::header_too_large || ec == errc::body_too_large;
        case condition::tls_verification: return in(ec, errc::tls_untrusted_certificate, errc::tls_verification_failed);
        }
        return false;
    }

private:
    // A range of errc, in declaration order (the enumeration groups them).
    static bool in(const error_code& ec, errc first, errc last) noexcept {
        return ec.category() == tokenflight::error_category() && ec.value() >= static_cast<int>(first) &&
               ec.value() <= static_cast<int>(last);
    }

    static bool transient(const error_code& ec) noexcept {
        namespace ae = boost::asio::error;
        if (ec.category() == tokenflight::oauth_category())
            return ec == oauth_errc::temporarily_unavailable || ec == oauth_errc::server_error;
        if (ec.category() == tokenflight::error_category()) {
            switch (static_cast<errc>(ec.value())) {
            case errc::connect_timeout:
            case errc::request_timeout:
            case errc::queue_timeout:
            case errc::connection_closed:
            case errc::stream_reset:
            case errc::stream_refused:
            case errc::http2_protocol_error:
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
};

template <std::size_t N>
std::string_view name_in(const entry (&table)[N], int ev) noexcept {
    const auto* e = find(table, ev);
    return e ? e->name : std::string_view("unknown");
}

} // namespace

const boost::system::error_category& oauth_category() noexcept {
    static const table_category instance("tokenflight.oauth", oauth_entries);
    return instance;
}

const boost::system::error_category& error_category() noexcept {
    static const table_category instance("tokenflight", client_entries);
    return instance;
}

const boost::system::error_category& condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

std::string_view to_string(oauth_errc e) noexcept { return name_in(oauth_entries, static_cast<int>(e)); }
std::string_view to_string(errc e) noexcept { return name_in(client_entries, static_cast<int>(e)); }
std::string_view to_string(condition c) noexcept { return name_in(condition_entries, static_cast<int>(c)); }

bool is_transient(const error_code& ec) noexcept { return ec == condition::transient; }

error_with_diagnostics::error_with_diagnostics(error_code ec, diagnostics diag)
    : boost::system::system_error(ec, diag.to_string()), diag_(std::move(diag)) {}

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
