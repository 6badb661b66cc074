#ifndef TOKENFLIGHT_CLIENT_HPP
#define TOKENFLIGHT_CLIENT_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/http/prepared_request.hpp>
#include <tokenflight/http/message.hpp>
#include <tokenflight/http/url.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// Authorized requests: default headers, the Authorization header, and one resend after a 401.

namespace tokenflight {

/// What the client did about a 401, for logs and metrics. Never carries a token or a header.
struct client_event {
    /// What happened.
    enum class kind {
        resend_after_401,           ///< a request got 401 and is sent again with a newer token
        unauthorized_after_resend,  ///< a resent request got 401 again: returned to the caller
        refresh_held_back,          ///< a 401 returned without a token request (futility backoff)
        token_failed,               ///< a request failed because no token could be had (`error`)
    };
    kind what = kind::resend_after_401; ///< what happened
    std::uint64_t generation = 0;       ///< the generation of the token the request was sent with
                                        ///< (0: none yet)
    std::uint64_t new_generation = 0;   ///< resend_after_401: the generation it is sent again with
    error_code error;                   ///< token_failed: why
};

/// Options of a client.
struct client_options {
    /// Added to every request that does not set the header itself (e.g. x-api-key, Referer, Origin).
    /// Names must be RFC 9110 tokens and values free of CR, LF, NUL and other controls: the
    /// client's constructor throws boost::system::system_error (errc::invalid_header_name or
    /// invalid_header_value) otherwise.
    std::vector<std::pair<std::string, std::string>> default_headers;
    /// `Authorization: <scheme> <token>`. Unset: the token's token_type ("Bearer"). Empty
    /// string: the raw token with no scheme, as the provider guide sends it.
    std::optional<std::string> auth_scheme;
    /// Used when the client creates its own connection pool.
    http::pool_options pool;
    /// Called for every client_event, on the thread that handles the request; must not block.
    /// Optional. Exceptions it throws are caught and ignored. Connection-level events are the
    /// pool's (http::pool_options).
    std::function<void(const client_event&)> on_event;
};

/// Counters of a client.
struct client_stats {
    std::uint64_t requests = 0;              ///< requests started
    std::uint64_t resends_after_401 = 0;     ///< requests resent with a newer token after a 401
    std::uint64_t unauthorized_after_resend = 0; ///< resent requests that got a 401 again
    std::uint64_t token_errors = 0;          ///< requests failed because no token could be had
    std::uint64_t refreshes_held_back = 0;   ///< 401s returned without a refresh (futility backoff)
    std::uint64_t dpop_nonce_resends = 0;    ///< requests resent with the server's new DPoP nonce
};

namespace detail {
class client_impl;
}

/// Sends HTTP requests authorized with a token_source's token.
///
/// The 401 path, for a request sent with token generation g:
/// - A challenge with `error="insufficient_scope"` is returned as it is: no token can fix it.
/// - Otherwise a token newer than g is obtained (one token request however many requests got
///   the 401) and the same request, body included, is sent again.
/// - If that resend gets 401 while the source already holds a newer token still (the request
///   spanned two revocations), it is sent a third time with that one; no request is sent more
///   than three times. A 401 for the newest token is returned to the caller.
/// - If a resend with a newly fetched token gets 401 and that token never got a 2xx, refreshing
///   was futile: from then on reactive refreshes of the source are spaced by a backoff (1 s,
///   doubling to 60 s, ended by the first 2xx) and 401s in between are returned without a token
///   request. A healthy revocation (the new token works) refreshes at once, however often.
/// - 403 is never retried.
///
/// The Authorization scheme is `Bearer` unless client_options::auth_scheme is set; a token
/// whose token_type is not Bearer (case-insensitively) is then errc::unsupported_token_type.
/// Plain http to a host other than loopback is refused (errc::insecure_transport) unless the
/// source's credentials::allow_insecure_http says otherwise: one switch for the secret and the
/// tokens made from it.
///
/// With a client certificate in the source's credentials (credentials::certificate), every
/// request presents it (send_options::identity is set to it, whatever the caller gave): a token
/// bound to the certificate (RFC 8705) is accepted only on connections that present it.
///
/// @par Thread safety
/// All member functions may be called concurrently from any thread; requests run concurrently
/// and never wait on each other except for connections (see http::pool_options).
///
/// @par Lifetimes (every asynchronous operation of this class)
/// Operations hold the client's shared state, which holds the token source's and the pool's:
/// the `client`, `token_source` and `connection_pool` objects may be destroyed while requests
/// run or before a `deferred` request is launched (such requests then fail with errc::closed or
/// `operation_aborted`). Arguments are taken by value (URLs copied at once). A `diagnostics&`
/// follows the token source's rules: written at completion, it must live until then.
///
/// @par Executors
/// Handlers run on their associated executor; a plain callback (no associated executor) runs
/// on the pool's executor. Never inside the initiating call.
///
/// @par What keeps `io_context::run()` busy
/// Requests in flight, and the pool's idle connections until their idle timeout: close() (or
/// destroying the client) closes a pool the client owns.
class client {
public:
    /// The executor of the client's pool.
    using executor_type = boost::asio::any_io_executor;
    /// The completion signature of async_send and async_request.
    using response_signature = void(error_code, http::response);
    /// The completion signature of async_send_brief.
    using brief_signature = void(error_code, http::brief_response);

    /// A client with a connection pool of its own.
    client(executor_type ex, token_source& source, client_options options = {});
    /// A client sending through `pool`, which may be shared with other clients.
    client(token_source& source, http::connection_pool& pool, client_options options = {});
    /// Closes the client (see close()).
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Sends `req` to the origin of `to` (its target is used when `req.target()` is empty).
    ///
    /// @par Completion signature
    /// `void(error_code, http::response)`. An HTTP status is not an error: 401 and 403 come
    /// back as responses.
    ///
    /// @par Errors
    /// The token source's (an oauth_errc, errc::server_unavailable, ...: see
    /// token_source::async_get_token), the pool's (errc::request_timeout, ...: see
    /// http::connection_pool::async_send), errc::insecure_transport, unsupported_token_type.
    ///
    /// @par Per-operation cancellation
    /// Terminal and partial at any time; total until the request's first byte is written (see
    /// http::connection_pool::async_send); completes with `operation_aborted`.
    ///
    /// @par Lifetimes and thread safety
    /// See the class.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(http::location to, http::request req, CompletionToken&& token = CompletionToken{}) {
        return async_send(std::move(to), std::move(req), http::send_options{}, std::forward<CompletionToken>(token));
    }

    /// As async_send(http::location, http::request, CompletionToken&&), with per-request
    /// options (timeout, body limit, idempotence; see http::send_options).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(http::location to, http::request req, const http::send_options& opts,
                    CompletionToken&& token = CompletionToken{}) {
        return initiate_message(std::move(to), std::move(req), opts, nullptr, std::forward<CompletionToken>(token));
    }

    /// As async_send(http::location, http::request, const http::send_options&, CompletionToken&&);
    /// when the request fails because no token could be had, `diag` holds what the token
    /// endpoint said (it is cleared otherwise).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(http::location to, http::request req, const http::send_options& opts, diagnostics& diag,
                    CompletionToken&& token = CompletionToken{}) {
        return initiate_message(std::move(to), std::move(req), opts, &diag, std::forward<CompletionToken>(token));
    }

    /// `method url` with an optional body; the URL is parsed here (errc::invalid_url).
    /// Completion, errors, cancellation and lifetimes as
    /// async_send(http::location, http::request, CompletionToken&&).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_request(http::verb method, std::string_view url, std::string body,
                       CompletionToken&& token = CompletionToken{}) {
        // The URL is copied now: a deferred or stored operation may start after the caller's
        // string is gone.
        return boost::asio::async_initiate<CompletionToken, response_signature>(
            [impl = impl_](auto handler, http::verb method, std::string url, std::string body) {
                diagnostics* target = diagnostics_target(nullptr, handler);
                start_url(impl, std::move(handler), method, url, std::move(body), target);
            },
            token, method, std::string(url), std::move(body));
    }

    /// GET url; as async_request.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_get(std::string_view url, CompletionToken&& token = CompletionToken{}) {
        return async_request(http::verb::get, url, {}, std::forward<CompletionToken>(token));
    }

    /// POST url with a body (Content-Type from default headers or set it with async_send); as
    /// async_request.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_post(std::string_view url, std::string body, CompletionToken&& token = CompletionToken{}) {
        return async_request(http::verb::post, url, std::move(body), std::forward<CompletionToken>(token));
    }

    /// Prepares `method url` for repeated sends: the client's default headers are added (those
    /// `headers` does not set), the head is checked and serialised once (see
    /// http::make_prepared_request), and plain http to a remote host is refused
    /// (errc::insecure_transport) unless allowed. Errors are returned, nothing is thrown.
    boost::system::result<http::prepared_request> prepare(http::verb method, std::string_view url,
                                                          std::vector<std::pair<std::string, std::string>> headers = {},
                                                          std::string body = {}) const;

    /// Sends a prepared request, with the same token handling as async_send: the Authorization
    /// line is built once per token generation and cached in `req`, and head and body go out in
    /// one gather write. `req` may be sent by any number of operations at once, through any
    /// number of clients; each operation holds it.
    ///
    /// @par Completion signature
    /// `void(error_code, http::response)`
    ///
    /// @par Errors
    /// As async_send(http::location, http::request, CompletionToken&&); also
    /// errc::invalid_header_name for a request that carries an Authorization header of its own
    /// (made by http::make_prepared_request with one), and `asio::error::invalid_argument` for
    /// an empty one.
    ///
    /// @par Per-operation cancellation, lifetimes, thread safety
    /// As async_send(http::location, http::request, CompletionToken&&).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(http::prepared_request req, CompletionToken&& token = CompletionToken{}) {
        return initiate_prepared<response_signature>(std::move(req), {}, nullptr, std::forward<CompletionToken>(token));
    }

    /// As async_send(http::prepared_request, CompletionToken&&), with per-request options.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(http::prepared_request req, const http::send_options& opts,
                    CompletionToken&& token = CompletionToken{}) {
        return initiate_prepared<response_signature>(std::move(req), opts, nullptr, std::forward<CompletionToken>(token));
    }

    /// As async_send(http::prepared_request, CompletionToken&&), with per-request options and,
    /// as in async_send(http::location, http::request, const http::send_options&, diagnostics&,
    /// CompletionToken&&), diagnostics.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(response_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(http::prepared_request req, const http::send_options& opts, diagnostics& diag,
                    CompletionToken&& token = CompletionToken{}) {
        return initiate_prepared<response_signature>(std::move(req), opts, &diag, std::forward<CompletionToken>(token));
    }

    /// As async_send(http::prepared_request, CompletionToken&&), keeping only the brief form of
    /// the response (status, body size, and the fields the 401 logic reads): nothing is stored
    /// or allocated for a 2xx. What a load generator or a gateway that only forwards a status
    /// needs.
    ///
    /// @par Completion signature
    /// `void(error_code, http::brief_response)`
    ///
    /// @par Errors, per-operation cancellation, lifetimes, thread safety
    /// As async_send(http::prepared_request, CompletionToken&&).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(brief_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send_brief(http::prepared_request req, CompletionToken&& token = CompletionToken{}) {
        return initiate_prepared<brief_signature>(std::move(req), {}, nullptr, std::forward<CompletionToken>(token));
    }

    /// As async_send_brief(http::prepared_request, CompletionToken&&), with per-request options.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(brief_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send_brief(http::prepared_request req, const http::send_options& opts,
                          CompletionToken&& token = CompletionToken{}) {
        return initiate_prepared<brief_signature>(std::move(req), opts, nullptr, std::forward<CompletionToken>(token));
    }

    /// As async_send_brief(http::prepared_request, CompletionToken&&), with per-request options
    /// and diagnostics.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(brief_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send_brief(http::prepared_request req, const http::send_options& opts, diagnostics& diag,
                          CompletionToken&& token = CompletionToken{}) {
        return initiate_prepared<brief_signature>(std::move(req), opts, &diag, std::forward<CompletionToken>(token));
    }

    /// Closes the connection pool the client owns (made by the first constructor): idle
    /// connections close at once, later requests fail with errc::closed. A shared pool is left
    /// open: it is its owner's to close.
    void close();

    /// The counters.
    client_stats stats() const;
    /// The executor of the client's pool.
    executor_type get_executor() const noexcept;

private:
    using handler_type = boost::asio::any_completion_handler<response_signature>;
    using brief_handler_type = boost::asio::any_completion_handler<brief_signature>;

    template <class CompletionToken>
    auto initiate_message(http::location to, http::request req, const http::send_options& opts, diagnostics* diag,
                          CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, response_signature>(
            [impl = impl_](auto handler, http::location to, http::request req, http::send_options opts,
                           diagnostics* diag) {
                diagnostics* target = diagnostics_target(diag, handler);
                start(impl, std::move(handler), std::move(to), std::move(req), opts, target);
            },
            token, std::move(to), std::move(req), opts, diag);
    }

    template <class Signature, class CompletionToken>
    auto initiate_prepared(http::prepared_request req, const http::send_options& opts, diagnostics* diag,
                           CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, Signature>(
            [impl = impl_](auto handler, http::prepared_request req, http::send_options opts, diagnostics* diag) {
                diagnostics* target = diagnostics_target(diag, handler);
                if constexpr (std::is_same_v<Signature, brief_signature>)
                    start_brief(impl, std::move(handler), req, opts, target);
                else
                    start_prepared(impl, std::move(handler), req, opts, target);
            },
            token, std::move(req), opts, diag);
    }

    static void start(const std::shared_ptr<detail::client_impl>& impl, handler_type handler, http::location to,
                      http::request req, const http::send_options& opts, diagnostics* diag);
    static void start_prepared(const std::shared_ptr<detail::client_impl>& impl, handler_type handler,
                               const http::prepared_request& req, const http::send_options& opts, diagnostics* diag);
    static void start_brief(const std::shared_ptr<detail::client_impl>& impl, brief_handler_type handler,
                            const http::prepared_request& req, const http::send_options& opts, diagnostics* diag);
    static void start_url(const std::shared_ptr<detail::client_impl>& impl, handler_type handler,
                          http::verb method, std::string_view url, std::string body, diagnostics* diag);

    std::unique_ptr<http::connection_pool> owned_pool_;
    std::shared_ptr<detail::client_impl> impl_;
};

} // namespace tokenflight

#endif
