#ifndef TOKENFLIGHT_HTTP_CONNECTION_POOL_HPP
#define TOKENFLIGHT_HTTP_CONNECTION_POOL_HPP

#include <tokenflight/completion_token.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/http/client_identity.hpp>
#include <tokenflight/http/message.hpp>
#include <tokenflight/http/proxy.hpp>
#include <tokenflight/http/prepared_request.hpp>
#include <tokenflight/http/url.hpp>
#include <tokenflight/token.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

/// @file
/// Per-origin connection pools over TCP and TLS: keep-alive HTTP/1.1, and HTTP/2 where asked
/// (pool_options::version).

namespace tokenflight::detail {
struct access;
}

namespace boost::asio::ssl {
class context; // <boost/asio/ssl/context.hpp>, for tls_options::configure_context
}

namespace tokenflight::http {

/// TLS settings. Verification is on unless switched off explicitly.
struct tls_options {
    bool verify_peer = true;      ///< verify the certificate chain and the host name
    bool use_system_store = true; ///< trust the system CA store
    std::string ca_file;          ///< also trust the CAs in this PEM file
    /// The client certificate https connections present (mutual TLS) when a request names none
    /// (send_options::identity); empty: none. The pool keeps each identity's connections apart.
    client_identity identity{};
    /// Called once, in the pool's constructor, with the TLS client context every https
    /// connection of the pool shares, after the options above were applied to it (TLS >= 1.2,
    /// verify mode, ca_file): the place for what they do not cover, such as a client
    /// certificate and key (mutual TLS), a verify callback, protocol versions or cipher lists.
    /// Include <boost/asio/ssl/context.hpp> to use the context; `native_handle()` gives
    /// OpenSSL's SSL_CTX. An exception it throws propagates from the pool's constructor.
    ///
    /// The pool still adds, per connection, SNI and (with verify_peer) the host name or address
    /// check, and loads the system store (use_system_store) at the first https connection,
    /// after this hook. Turning verification off here (verify_none) skips the chain and the name
    /// checks alike; prefer verify_peer = false, which says so where it is read.
    std::function<void(boost::asio::ssl::context&)> configure_context;
};

/// What a pool_event reports.
enum class pool_event_kind : std::uint8_t {
    connection_opened, ///< a connection is ready for requests: connected (and TLS handshaken)
    connection_reused, ///< a request was given an already-open connection
    /// An opened connection was closed. `ec`: the error that ended it (errc::connection_closed,
    /// request_timeout, operation_aborted, a socket or TLS error), errc::closed when the pool was
    /// closed, none when it was simply done: idle past idle_timeout, or its last response said
    /// so (`Connection: close`, a body ended by the end of the stream, bytes after the response).
    connection_closed,
    /// Every byte of a request was written. Once per attempt: a request resent on a fresh
    /// connection (see connection_pool::async_send) is sent twice.
    request_sent,
    response_received, ///< a whole response was read; `status` is its status code
    /// A request completed with the error `ec`: on a connection, in the queue (queue_timeout, a
    /// cancellation, close()), or refused (a closed pool, a request head that fails its checks).
    request_failed,
};

/// One event of a pool, for pool_options::on_event. It never carries a header value, a body or a
/// request target: they may hold credentials.
struct pool_event {
    pool_event_kind kind{}; ///< what happened
    /// The request's or connection's origin; valid during the call only. Null only for a
    /// request_failed of an empty prepared_request.
    const origin* to = nullptr;
    /// Which connection, numbered from 1 in the order the pool opened them (a resend's fresh
    /// connection has a new number); 0 for a request that failed without an open one.
    std::uint64_t connection = 0;
    error_code ec{};     ///< connection_closed: the reason, if any; request_failed: the error
    unsigned status = 0; ///< response_received: the HTTP status code
    /// response_received, request_failed: the request's time in the pool, from the send to its
    /// completion, queueing included (zero for a request refused before it reached the pool).
    clock::duration elapsed{};
};

/// Which HTTP version a pool speaks to an origin.
enum class http_version : std::uint8_t {
    http1, ///< HTTP/1.1 only (the default)
    /// https origins: ALPN offers `h2` and `http/1.1`, and the server's choice is used (an origin
    /// whose server picks HTTP/1.1 stays on it for the pool's life); http origins: HTTP/1.1.
    http2,
    /// As http2, and http origins speak HTTP/2 in cleartext with prior knowledge (RFC 9113
    /// section 3.3): only for servers known to accept it, as nothing negotiates it.
    h2c,
};

/// HTTP/2 connections (pool_options::version): many requests, each its own stream, share a few
/// connections per origin.
struct http2_options {
    /// Connections per origin. A request goes to the first connection with a free stream (up to
    /// the lower of max_concurrent_streams and the server's SETTINGS_MAX_CONCURRENT_STREAMS);
    /// when every connection is full, another one opens up to this limit; beyond it requests
    /// wait in FIFO order (pool_options::queue_timeout).
    std::size_t max_connections = 1;
    /// Streams per connection, at most; the server's own limit applies too.
    std::uint32_t max_concurrent_streams = 256;
    /// The receive window of each stream, and of the connection: sized for throughput, as flow
    /// control stalls a sender after a window's worth of bytes per round trip.
    std::uint32_t stream_window = 1u << 20;
    std::uint32_t connection_window = 16u << 20; ///< see stream_window
    /// CONTINUATION frames accepted after one HEADERS frame; more fail the connection.
    std::size_t max_continuations = 8;
    /// A connection that received nothing for this long is sent a PING; no answer within
    /// ping_timeout closes it, its streams failing with errc::http2_protocol_error. So does a
    /// write, or a timed-out stream's reset, that cannot get out for ping_timeout (a server that
    /// stopped reading), and a server whose SETTINGS do not come within connect_timeout.
    clock::duration ping_interval = std::chrono::seconds(30);
    clock::duration ping_timeout = std::chrono::seconds(10); ///< see ping_interval
    /// A request refused unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream id) is
    /// resent on another connection at most this many times; then it fails with the refusal.
    unsigned max_resends = 2;
};

/// Limits and timeouts of a connection pool.
struct pool_options {
    /// HTTP/1.1 only, or HTTP/2 where the server agrees (see http_version and http2_options).
    http_version version = http_version::http1;
    http2_options http2; ///< for connections that speak HTTP/2
    /// HTTP/1.1 connections per origin; requests beyond it wait in FIFO order (HTTP/2's are
    /// http2_options::max_connections).
    std::size_t max_connections_per_origin = 64;
    clock::duration connect_timeout = std::chrono::seconds(10); ///< TCP connect + TLS handshake
    clock::duration request_timeout = std::chrono::seconds(30); ///< whole request, queueing included
    clock::duration queue_timeout = std::chrono::seconds(30);   ///< waiting for a free connection
    /// Idle connections older than this are closed, by a timer that runs while idle connections
    /// exist, armed for the oldest one's expiry: until then the timer and the idle connections
    /// keep `io_context::run()` from returning, unless the pool is closed or destroyed first
    /// (see connection_pool, "What keeps run() busy").
    clock::duration idle_timeout = std::chrono::seconds(60);
    std::size_t header_limit = 16 * 1024;       ///< response header bytes
    std::size_t body_limit = 8 * 1024 * 1024;   ///< response body bytes
    std::string user_agent = "tokenflight/0.1"; ///< sent when the request has none
    tls_options tls;                            ///< for https origins
    /// Egress proxy: by default HTTPS_PROXY / HTTP_PROXY / NO_PROXY (loopback never proxied);
    /// https connections through a proxy are CONNECT tunnels, with TLS, SNI and certificate
    /// checks end to end with the origin, never with the proxy; plain http requests go to the
    /// proxy in absolute-form (`GET http://host:port/path`), with Proxy-Authorization added.
    proxy_options proxy;
    /// Called for every pool_event, for logging and metrics. Runs on the pool's executor (on
    /// the connection's strand for connection and exchange events), or for a request refused at
    /// once, in a handler posted to it; on several threads at once when the io_context has
    /// several, never under the pool's locks. Keep it short and non-blocking: it runs in the
    /// request path. An exception it throws is caught and ignored. Empty (the default): the
    /// request path pays one predictable branch per event site, nothing else.
    std::function<void(const pool_event&)> on_event;
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
    /// The client certificate to present (mutual TLS); empty: tls_options::identity. The
    /// request goes on a connection opened for this identity, never on another's: connections
    /// are pooled per (origin, identity). Plain http requests ignore it. The pool keeps a copy
    /// of every identity it was given (and so its key) until the pool is destroyed: to rotate
    /// certificates often, rotate the pools that use them too. A client sets its token source's
    /// certificate here, whatever the caller set (see client).
    client_identity identity{};
};

/// A histogram of durations with fixed log-linear buckets: below 8 us, one bucket per
/// microsecond; from there, 8 buckets per power of two (each at most 1/8 of its lower bound
/// wide, so a bucket's bounds are within 12.5% of any value in it) up to 2^26 us (about 67 s);
/// one last bucket for everything longer. Bucket i holds values v with
/// upper_bound(i - 1) <= v < upper_bound(i).
struct latency_histogram {
    static constexpr std::size_t sub_buckets = 8;       ///< per power of two
    static constexpr std::size_t octaves = 23;          ///< 8 us (2^3) to 2^26 us
    static constexpr std::size_t bucket_count = sub_buckets + octaves * sub_buckets + 1; ///< buckets in all

    std::array<std::uint64_t, bucket_count> counts{}; ///< values recorded per bucket

    /// The bucket that `d` falls in (a negative duration in the first).
    static std::size_t bucket_of(clock::duration d) noexcept;
    /// The exclusive upper bound of bucket `i`; clock::duration::max() for the last one.
    static clock::duration upper_bound(std::size_t i) noexcept;

    /// The number of values recorded.
    std::uint64_t total() const noexcept;
    /// An upper bound of the `q`-quantile (q in [0, 1]; 0.99 for the 99th percentile): the upper
    /// bound of the bucket holding the ceil(q * total())-th smallest value (the smallest for
    /// q = 0). Zero when the histogram is empty; clock::duration::max() when that value is in
    /// the last bucket.
    clock::duration percentile(double q) const noexcept;
    /// Adds the counts of `other` (for example another pool's).
    latency_histogram& operator+=(const latency_histogram& other) noexcept;
};

/// Counters of a pool; a consistent-enough snapshot, read without stopping traffic.
struct pool_stats {
    std::uint64_t requests = 0;           ///< sends started
    std::uint64_t connections_opened = 0; ///< TCP (and TLS) connections established
    std::uint64_t connections_reused = 0; ///< requests sent on an already-open connection
    std::uint64_t resends = 0;            ///< requests resent after a stale keep-alive connection failed
    std::uint64_t failures = 0;           ///< sends completed with an error
    std::size_t open_connections = 0;     ///< open or opening right now
    std::uint64_t http2_connections = 0;  ///< connections established that speak HTTP/2
    std::uint64_t http2_requests = 0;     ///< requests sent as HTTP/2 streams (resends included)
    /// How long requests took, from the send to the completion (queueing, connecting, resends
    /// included): one value per request that reached the pool, recorded when it completes,
    /// with a response or an error. Requests refused before (a request head that fails its
    /// checks, an empty prepared_request) are counted in `requests` and `failures` only.
    latency_histogram latency;
};

namespace detail {
class pool_impl;
}

/// Sends requests over pooled connections, one pool per origin (scheme, host, port): HTTP/1.1
/// keep-alive connections carrying a request at a time, or, with pool_options::version, HTTP/2
/// connections carrying many (see http2_options).
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
/// Requests in flight, requests queued for a connection, and idle keep-alive connections
/// together with the timer that sweeps them, which wait until the last idle connection has been
/// idle for idle_timeout. close() and the destructor end the idle part at once: the sweeper's
/// timer is cancelled and idle connections are closed, queued requests fail with errc::closed,
/// and requests in flight run to their own end, after which their connections close. So
/// `io_context::run()` returns as soon as those requests are done and nothing else is pending;
/// a program that keeps its pool (or the client or token source holding it) open waits
/// idle_timeout after its last request.
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
