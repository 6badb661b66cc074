#ifndef TOKENFLIGHT_HTTP_PREPARED_REQUEST_HPP
#define TOKENFLIGHT_HTTP_PREPARED_REQUEST_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/http/message.hpp>
#include <tokenflight/http/url.hpp>

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// Requests checked and serialised once, sent many times; and the brief form of a response for
/// callers that keep only its status.

namespace tokenflight::http {

namespace detail {
struct prepared_state;
struct prepared_access;
}

/// A request prepared once (method, URL, headers, body) and sent any number of times, from any
/// thread, at once: its head is checked and serialised when it is made, and each send writes it
/// with one gather write, without copying or re-serialising anything. A client adds the
/// Authorization line of the token in use, which it builds once per token generation and caches
/// in the prepared request (the only part of the head that changes).
///
/// Made by make_prepared_request() or client::prepare(). Copies share the same state. A
/// default-constructed one is empty: sending it completes with `asio::error::invalid_argument`,
/// and where() and method() must not be called on it.
class prepared_request {
public:
    /// An empty request, to be assigned one made by make_prepared_request() or client::prepare().
    prepared_request() = default;

    /// True unless empty.
    explicit operator bool() const noexcept { return state_ != nullptr; }
    /// The URL it is sent to, split into origin and target.
    const location& where() const noexcept;
    /// The request method.
    verb method() const noexcept;
    /// The serialised head without Authorization, ending with the CRLF of its last field (no
    /// blank line): for tests and diagnostics.
    std::string_view head_without_authorization() const noexcept;
    /// The body sent with every send; empty for none.
    std::string_view body() const noexcept;
    /// Authorization lines built so far: one per token generation it was sent with (senders
    /// racing on a new generation may each build one; only one is kept).
    std::uint64_t authorization_builds() const noexcept;

private:
    friend struct detail::prepared_access;
    std::shared_ptr<detail::prepared_state> state_;
};

/// Prepares `method url` with `headers` and `body` (Content-Length is set; Host too, unless given;
/// User-Agent unless given or empty). Headers are sent as given, Authorization included (a
/// client's prepare() drops it and supplies its own per token; a client refuses to send a
/// request that carries one). Errors: errc::invalid_url, unsupported_scheme, invalid_method (also
/// a body on TRACE), invalid_request_target, invalid_header_name (also a Content-Length or
/// Transfer-Encoding: the framing is the body's), invalid_header_value. Nothing is thrown.
boost::system::result<prepared_request> make_prepared_request(verb method, std::string_view url,
                                               std::vector<std::pair<std::string, std::string>> headers = {},
                                               std::string body = {}, std::string_view user_agent = "tokenflight/0.1");

/// The longest DPoP nonce kept (RFC 9449 sets no limit; servers send tens of bytes).
inline constexpr std::size_t max_dpop_nonce_size = 1024;

/// What the load path keeps of a response: parsed without storing a header or the body, into
/// memory that belongs to the connection; nothing is allocated for a 2xx.
struct brief_response {
    unsigned status = 0;             ///< the status code, e.g. 200
    std::uint64_t body_size = 0;     ///< body bytes received (decoded from chunked)
    bool keep_alive = false;         ///< the response lets the connection stay open
    /// The `WWW-Authenticate` fields of a 401, joined by ", " (at most 1 KiB kept): what the
    /// client's 401 logic reads. Empty for other statuses.
    std::string www_authenticate;
    /// `Retry-After` of a 429 or 503, as sent (at most 64 bytes kept).
    std::string retry_after;
    /// A challenge of a 401 says `error="insufficient_scope"` (found in every field, however
    /// long, not only in the kept text): a newer token would not help.
    bool insufficient_scope = false;
    /// The `DPoP-Nonce` field (RFC 9449 section 8), as sent; empty when absent or longer than
    /// max_dpop_nonce_size (never kept cut: a cut nonce is a wrong one).
    std::string dpop_nonce;
    /// A challenge of a 401 says `error="use_dpop_nonce"`: the proof needs the server's nonce,
    /// not a newer token.
    bool use_dpop_nonce = false;

    /// The status code, under the name Beast's responses give it.
    unsigned result_int() const noexcept { return status; }
};

} // namespace tokenflight::http

#endif
