#ifndef TOKENFLIGHT_HTTP_CONNECTION_POOL_HPP
#define TOKENFLIGHT_HTTP_CONNECTION_POOL_HPP

#include <tokenflight/completion_token.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/http/message.hpp>
#include <tokenflight/http/prepared_request.hpp>
#include <tokenflight/http/url.hpp>
#include <tokenflight/token.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

/// @file
/// Per-origin keep-alive HTTP/1.1 connection pools over TCP and TLS.

namespace tokenflight::detail {
struct access;
}

namespace tokenflight::http {

/// TLS settings. Verification is on unless switched off explicitly.
struct tls_options {
    bool verify_peer = true;      ///< verify the certificate chain and the host name
    bool use_system_store = true; ///< trust the system CA store
    std::string ca_file;          ///< also trust the CAs in this PEM file
};

/// Limits and timeouts of a connection pool.
struct pool_options {
    std::size_t max_connections_per_origin = 64; ///< requests beyond it wait in FIFO order
    clock::duration connect_timeout = std::chrono::seconds(10); ///< TCP connect + TLS handshake
    clock::duration request_timeout = std::chrono::seconds(30); ///< whole request, queueing included
    clock::duration queue_timeout = std::chrono::seconds(30);   ///< waiting for a free connection
    /// Idle connections older than this are closed, by a timer while idle connections exist
    /// (so `io_context::run()` returns once they expire or the pool is closed).
    clock::duration idle_timeout = std::chrono::seconds(60);
    std::size_t header_limit = 16 * 1024;       ///< response header bytes
    std::size_t body_limit = 8 * 1024 * 1024;   ///< response body bytes
    std::string user_agent = "tokenflight/0.1"; ///< sent when the request has none
    tls_options tls;                            ///< for https origins
};

/// Per-request overrides.
struct send_options {
    std::optional<clock::duration> timeout; ///< whole request; default pool_options::request_timeout
    std::optional<std::size_t> body_limit;  ///< default pool_options::body_limit
    /// May the request be resent on a fresh connection when a reused one fails before any
    /// response byte? Default: true for idempotent methods (GET, HEAD, PUT, DELETE, ...).
    std::optional<bool> idempotent;
    /// The request carries a credential (a token request): once it is sent, its serialised head,
    /// body and header values are overwritten (OPENSSL_cleanse) before the memory is freed.
    bool sensitive = false;
};

/// Counters of a pool; a consistent-enough snapshot, read without stopping traffic.
struct pool_stats {
    std::uint64_t requests = 0;           ///< sends started
    std::uint64_t connections_opened = 0; ///< TCP (and TLS) connections established
    std::uint64_t connections_reused = 0; ///< requests sent on an already-open connection
    std::uint64_t resends = 0;            ///< requests resent after a stale keep-alive connection failed
    std::uint64_t failures = 0;           ///< sends completed with an error
    std::size_t open_connections = 0;     ///< open or opening right now
};

namespace detail {
class pool_impl;
}

/// Sends HTTP/1.1 requests over pooled keep-alive connections, one pool per origin
/// (scheme, host, port).
///
/// @par Thread safety
/// Every member function may be called from any thread, concurrently; requests run
/// concurrently on the executor's threads and are never serialised behind one lock.
///
/// @par Lifetimes
/// Requests in flight hold the pool's shared state, not the `connection_pool` object: the pool
/// may be destroyed while they run or before a `deferred` send is launched (destroying it
/// closes it; see close()). Every argument is taken by value.
///
/// @par Executors
/// Handlers run on their associated executor (a plain callback: the pool's executor), never
/// inside the initiating call.
///
/// @par What keeps `io_context::run()` busy
/// Requests in flight or queued, and idle keep-alive connections with the timer that closes
/// them after pool_options::idle_timeout. close() (or destroying the pool) closes idle
/// connections at once.
class connection_pool {
public:
    /// The executor given to the constructor.
    using executor_type = boost::asio::any_io_executor;
    /// The completion signature of async_send.
    using send_signature = void(error_code, response);
    /// The completion signature of async_send_brief.
    using brief_signature = void(error_code, brief_response);

    /// Throws boost::system::system_error when `options.tls.ca_file` cannot be loaded.
    explicit connection_pool(executor_type ex, pool_options options = {});
    /// Closes the pool (see close()).
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    /// Sends `req` to `to` and reads the response.
    ///
    /// Host and User-Agent headers are filled in when missing. A failure on a reused connection
    /// before any response byte arrived is retried once on a fresh connection when the request
    /// is idempotent (see send_options::idempotent).
    ///
    /// The request head is checked where it is serialised: a method or header name that is not
    /// an RFC 9110 token, a header value with CR, LF, NUL or another control character, or a
    /// target with spaces or controls fails with errc::invalid_method, invalid_header_name,
    /// invalid_header_value or invalid_request_target, and nothing is sent.
    ///
    /// Bounds: the whole request (queueing, resolve, connect, TLS, write, read) ends by its
    /// timeout, enforced by a timer whatever bytes keep arriving; connect (resolve included) by
    /// connect_timeout. A response's heads, chunk extensions and trailers share header_limit;
    /// its body is bounded by body_limit; a connection buffers at most header_limit + 16 KiB.
    ///
    /// @par Completion signature
    /// `void(error_code, http::response)`
    ///
    /// @par Errors
    /// errc::connect_timeout, request_timeout, queue_timeout, header_too_large, body_too_large,
    /// connection_closed, closed, the header errors above; resolver, socket and TLS errors as
    /// Asio reports them (a host that does not resolve: `asio::error::host_not_found`).
    /// `ec == condition::transient` tells which are worth retrying.
    ///
    /// @par Per-operation cancellation
    /// Terminal and partial at any time; total only until the request's first byte is written
    /// (from then on it may have had an effect on the server, which total cancellation promises
    /// it has not, so the operation runs on). A cancelled request completes with
    /// `operation_aborted`; a connection it was using is closed, never reused half-read.
    ///
    /// @par Lifetimes and thread safety
    /// See the class.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(send_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(origin to, request req, send_options opts, CompletionToken&& token = CompletionToken{}) {
        return boost::asio::async_initiate<CompletionToken, send_signature>(
            [impl = impl_](auto handler, origin to, request req, send_options opts) {
                initiate_send(impl, std::move(handler), std::move(to), std::move(req), opts);
            },
            token, std::move(to), std::move(req), opts);
    }

    /// async_send(origin, request, send_options, CompletionToken&&) with default send_options.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(send_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(origin to, request req, CompletionToken&& token = CompletionToken{}) {
        return async_send(std::move(to), std::move(req), send_options{}, std::forward<CompletionToken>(token));
    }

    /// Sends a prepared request as it is (the pool adds no Authorization: see client for tokens)
    /// to its origin: head and body in one gather write, nothing serialised or copied per send.
    ///
    /// @par Completion signature
    /// `void(error_code, http::response)`
    ///
    /// @par Errors, per-operation cancellation, lifetimes, thread safety
    /// As async_send(origin, request, send_options, CompletionToken&&); also
    /// `asio::error::invalid_argument` for an empty prepared_request.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(send_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send(prepared_request req, send_options opts, CompletionToken&& token = CompletionToken{}) {
        return boost::asio::async_initiate<CompletionToken, send_signature>(
            [impl = impl_](auto handler, prepared_request req, send_options opts) {
                initiate_prepared(impl, std::move(handler), req, opts);
            },
            token, std::move(req), opts);
    }

    /// As async_send(prepared_request, send_options, CompletionToken&&), keeping only the brief
    /// form of the response: nothing is stored or allocated for a 2xx.
    ///
    /// @par Completion signature
    /// `void(error_code, http::brief_response)`
    ///
    /// @par Errors, per-operation cancellation, lifetimes, thread safety
    /// As async_send(prepared_request, send_options, CompletionToken&&).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(brief_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_send_brief(prepared_request req, send_options opts, CompletionToken&& token = CompletionToken{}) {
        return boost::asio::async_initiate<CompletionToken, brief_signature>(
            [impl = impl_](auto handler, prepared_request req, send_options opts) {
                initiate_brief(impl, std::move(handler), req, opts);
            },
            token, std::move(req), opts);
    }

    /// Closes idle connections, fails queued and future requests with errc::closed; requests
    /// in flight finish and their connections are then closed.
    void close();

    /// The counters.
    pool_stats stats() const;
    /// The executor given to the constructor.
    executor_type get_executor() const noexcept;
    /// The options given to the constructor.
    const pool_options& options() const noexcept;

private:
    friend struct tokenflight::detail::access;
    static void initiate_send(const std::shared_ptr<detail::pool_impl>& impl,
                              boost::asio::any_completion_handler<send_signature> handler, origin to, request req,
                              send_options opts);
    static void initiate_prepared(const std::shared_ptr<detail::pool_impl>& impl,
                                  boost::asio::any_completion_handler<send_signature> handler,
                                  const prepared_request& req, send_options opts);
    static void initiate_brief(const std::shared_ptr<detail::pool_impl>& impl,
                               boost::asio::any_completion_handler<brief_signature> handler,
                               const prepared_request& req, send_options opts);

    std::shared_ptr<detail::pool_impl> impl_;
};

} // namespace tokenflight::http

#endif
