// Private to tokenflight: the connection pool's internals, shared with the client and the token
// source so that their coroutines run the send loop inline instead of spawning another one.
#ifndef TOKENFLIGHT_SRC_HTTP_POOL_IMPL_HPP
#define TOKENFLIGHT_SRC_HTTP_POOL_IMPL_HPP

#include <tokenflight/http/connection_pool.hpp>

#include "exchange.hpp"
#include "../spawn.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace tokenflight::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Cancellation of a request, by phase, after Asio's rules for the three types. Until its first
// byte is written a request has had no effect, so every type is honoured: queue waits, token
// waits and connects are abandoned. From then on it may have had one: total cancellation ("no
// side effects") can no longer be honoured and is dropped (cancel_once_sent, installed by
// pool_impl::send before the first write and kept for the rest of the operation, resends
// included); terminal and partial still end it by closing the connection. The I/O below (Beast,
// SSL) implements terminal cancellation only, so every accepted type reaches it as terminal.
// A request coroutine starts with reset_cancellation_state(enable_total_cancellation(),
// cancel_to_terminal).
inline asio::cancellation_type cancel_to_terminal(asio::cancellation_type t) noexcept {
    return t != asio::cancellation_type::none ? asio::cancellation_type::terminal : asio::cancellation_type::none;
}
inline asio::cancellation_type cancel_once_sent(asio::cancellation_type t) noexcept {
    return t & (asio::cancellation_type::terminal | asio::cancellation_type::partial);
}

/// One keep-alive connection. Used by one request at a time; handed between requests under the
/// origin's mutex, which orders all access to it.
struct connection {
    std::unique_ptr<beast::tcp_stream> tcp;                     // plain http
    std::unique_ptr<asio::ssl::stream<beast::tcp_stream>> tls;  // https
    std::unique_ptr<beast::test::stream> mem;                   // an in-memory test transport
    beast::flat_buffer buffer;
    clock::time_point idle_since{};

    /// The TCP stream under tcp or tls (not for mem).
    beast::tcp_stream& lowest() noexcept { return tls ? tls->next_layer() : *tcp; }
    void close() noexcept;
};

/// Replaces resolve, connect and TLS by a factory of in-memory streams, whose other ends the
/// caller serves: the end-to-end fuzz target drives the whole client through it without a
/// socket, deterministically. Not for production use; there is no public way to set it.
using test_transport = std::function<std::unique_ptr<beast::test::stream>(const origin&)>;

/// A request waiting for a connection of a full origin. The releaser hands it over under the
/// origin's mutex and wakes it by cancelling the timer on the waiter's own strand.
struct waiter {
    explicit waiter(const asio::any_io_executor& strand) : timer(strand) {}
    asio::steady_timer timer;
    std::unique_ptr<connection> conn; // a connection to reuse, or null: a permit to open one
    bool granted = false;
    bool closed = false;
};

/// One wall-clock deadline per phase of a request (connect, then the whole exchange), enforced by
/// a timer on the request's strand: when it fires it cancels the resolve or closes the socket in
/// use, however many bytes keep arriving. Shared with the timer's handler, which may run after
/// the request ended.
struct watchdog {
    explicit watchdog(const asio::any_io_executor& strand) : timer(strand) {}
    asio::steady_timer timer;
    asio::steady_timer* resolve_wait = nullptr;  // the wait for a resolve in progress, or null
    connection* conn = nullptr;                  // in use now, or null
    bool fired = false;
    unsigned armed = 0; // a handler of an earlier arming that already fired does nothing

    /// (Re)starts the deadline; only from the strand.
    static void arm(const std::shared_ptr<watchdog>& w, clock::time_point at);
    /// Stops it; the handler may still run but finds nothing to do.
    void disarm() {
        ++armed; // first: whatever follows, a handler already queued now does nothing
        resolve_wait = nullptr;
        conn = nullptr;
        timer.cancel();
    }

    /// Disarms when a phase ends, however it ends (an exception included): the timer's handler
    /// must never reach a connection or a wait that is gone.
    struct phase {
        watchdog& w;
        ~phase() {
            try {
                w.disarm();
            } catch (...) { // cancel() reporting a failure: the handler is harmless anyway
            }
        }
    };
};

struct origin_pool {
    std::mutex mutex;
    std::vector<std::unique_ptr<connection>> idle; // most recently used last
    std::size_t open = 0;                          // idle + busy + connecting
    std::deque<std::shared_ptr<waiter>> waiters;
};

class pool_impl : public std::enable_shared_from_this<pool_impl> {
public:
    pool_impl(asio::any_io_executor ex, pool_options options);

    /// The whole send: queueing, connecting, one resend on a stale connection.
    /// Must be awaited from a coroutine whose executor is a strand.
    asio::awaitable<std::tuple<error_code, response>> send(const origin& to, request& req, const send_options& opts);
    /// The same for a request already on its wire form (a prepared request's), read with a Reader
    /// (full_reader or brief_reader). The buffers of `w` must stay valid until completion.
    template <class Reader>
    asio::awaitable<std::tuple<error_code, typename Reader::result_type>> send_wire(const origin& to,
                                                                                  const wire_request& w,
                                                                                  const send_options& opts);

    void close();
    pool_stats stats() const;
    /// Starts the idle sweeper unless it runs already (called when a connection goes idle).
    void start_sweeper();

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    /// A strand for the next request coroutine (see tokenflight::detail::strand_set).
    const asio::any_io_executor& next_strand() noexcept { return strands_.next(); }
    const pool_options& options() const noexcept { return options_; }
    /// See test_transport. Set before the first request.
    void set_test_transport(test_transport t) { test_transport_ = std::move(t); }

private:
    struct acquired {
        error_code ec;
        std::unique_ptr<connection> conn; // null with no error: open a new one
        bool reused = false;
    };

    // A connection (or a permit to open one) taken from an origin's pool; returned exactly once.
    struct checkout {
        pool_impl& pool;
        origin_pool& origin;
        std::unique_ptr<connection> conn;
        bool returned = false;
        void give_back(bool reusable) {
            returned = true;
            pool.release(origin, std::move(conn), reusable);
        }
        ~checkout() {
            if (!returned) pool.release(origin, std::move(conn), false);
        }
    };

    origin_pool& pool_for(const origin& o);
    static asio::awaitable<void> sweep(std::weak_ptr<pool_impl> weak);
    bool close_expired_idle(); // true while idle connections remain
    asio::awaitable<acquired> acquire(origin_pool& p, bool fresh, clock::time_point deadline);
    void release(origin_pool& p, std::unique_ptr<connection> c, bool reusable);
    asio::awaitable<error_code> connect(connection& c, const origin& to, watchdog& dog);
    template <class Reader>
    asio::awaitable<exchange_result<typename Reader::result_type>> exchange(connection& c, const wire_request& w,
                                                                            std::size_t body_limit);

    asio::any_io_executor ex_;
    tokenflight::detail::strand_set strands_;
    pool_options options_;
    std::unique_ptr<asio::ssl::context> ssl_;
    std::once_flag system_store_loaded_; // completed before any TLS stream uses ssl_
    mutable std::mutex origins_mutex_;
    std::map<origin, std::unique_ptr<origin_pool>> origins_;
    std::atomic<bool> closed_{false};
    // Closes idle connections once they pass idle_timeout, even with no traffic; runs only while
    // idle connections exist, so it never keeps an otherwise finished io_context running long.
    asio::steady_timer sweep_timer_;
    std::atomic<bool> sweeping_{false};

    std::atomic<std::uint64_t> requests_{0}, opened_{0}, reused_{0}, resends_{0}, failures_{0};
    test_transport test_transport_;
};

} // namespace tokenflight::http::detail

#endif
