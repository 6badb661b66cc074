#ifndef TOKENFLIGHT_CLIENT_HPP
#define TOKENFLIGHT_CLIENT_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/http/message.hpp>
#include <tokenflight/http/url.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// Authorized requests: default headers, the Authorization header, and one resend after a 401.

namespace tokenflight {

/// Options of a client.
struct client_options {
    /// Added to every request that does not set the header itself (e.g. x-api-key, Referer, Origin).
    std::vector<std::pair<std::string, std::string>> default_headers;
    /// `Authorization: <scheme> <token>`. Unset: the token's token_type ("Bearer"). Empty
    /// string: the raw token with no scheme, as the provider guide sends it.
    std::optional<std::string> auth_scheme;
    /// Send the token over plain http:// to a non-loopback host.
    bool allow_insecure_http = false;
    /// Used when the client creates its own connection pool.
    http::pool_options pool;
};

/// Counters of a client.
struct client_stats {
    std::uint64_t requests = 0;              ///< requests started
    std::uint64_t resends_after_401 = 0;     ///< requests resent with a newer token after a 401
    std::uint64_t unauthorized_after_resend = 0; ///< resent requests that got a 401 again
    std::uint64_t token_errors = 0;          ///< requests failed because no token could be had
};

namespace detail {
class client_impl;
}

/// Sends HTTP requests authorized with a token_source's token.
///
/// A 401 answer to a request sent with token generation g gets a token newer than g (one token
/// request however many requests got the 401) and the same request, body included, is sent
/// once more. A second 401 is returned to the caller; 403 is never retried.
///
/// Thread safety: all member functions may be called concurrently from any thread; requests run
/// concurrently and never wait on each other except for connections (see http::pool_options).
/// Lifetime: the token source (and a shared pool) must outlive the client's requests.
class client {
public:
    using executor_type = boost::asio::any_io_executor;
    using response_signature = void(error_code, http::response);

    /// A client with a connection pool of its own.
    client(executor_type ex, token_source& source, client_options options = {});
    /// A client sending through `pool`, which may be shared with other clients.
    client(token_source& source, http::connection_pool& pool, client_options options = {});
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Sends `req` to the origin of `to` (its target is used when `req.target()` is empty).
    ///
    /// Completion: `void(error_code, http::response)`. An HTTP status is not an error: 401 and
    /// 403 come back as responses. Errors: the token source's (errc::invalid_client, ...), the
    /// pool's (errc::request_timeout, ...), errc::insecure_transport.
    ///
    /// Per-operation cancellation: terminal, partial and total; completes with `operation_aborted`.
    template <class CompletionToken>
    auto async_send(http::location to, http::request req, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, response_signature>(
            [this](auto handler, http::location to, http::request req) {
                start(std::move(handler), std::move(to), std::move(req));
            },
            token, std::move(to), std::move(req));
    }

    /// `method url` with an optional body; the URL is parsed here (errc::invalid_url).
    template <class CompletionToken>
    auto async_request(http::verb method, std::string_view url, std::string body, CompletionToken&& token) {
        // The URL is copied now: a deferred or stored operation may start after the caller's
        // string is gone.
        return boost::asio::async_initiate<CompletionToken, response_signature>(
            [this](auto handler, http::verb method, std::string url, std::string body) {
                start_url(std::move(handler), method, url, std::move(body));
            },
            token, method, std::string(url), std::move(body));
    }

    /// GET url.
    template <class CompletionToken>
    auto async_get(std::string_view url, CompletionToken&& token) {
        return async_request(http::verb::get, url, {}, std::forward<CompletionToken>(token));
    }

    /// POST url with a body (Content-Type from default headers or set it with async_send).
    template <class CompletionToken>
    auto async_post(std::string_view url, std::string body, CompletionToken&& token) {
        return async_request(http::verb::post, url, std::move(body), std::forward<CompletionToken>(token));
    }

    client_stats stats() const;
    executor_type get_executor() const noexcept;

private:
    using handler_type = boost::asio::any_completion_handler<response_signature>;
    void start(handler_type handler, http::location to, http::request req);
    void start_url(handler_type handler, http::verb method, std::string_view url, std::string body);

    std::unique_ptr<http::connection_pool> owned_pool_;
    std::shared_ptr<detail::client_impl> impl_;
};

} // namespace tokenflight

#endif
