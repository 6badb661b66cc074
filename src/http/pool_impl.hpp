// Private to tokenflight: the connection pool's internals, shared with the client and the token
// source.
//
// The shape (docs/design-notes.md, "The fan-out path"): every pooled connection runs one
// long-lived loop, a chain of handlers on its strand (no strand when the io_context's concurrency
// hint is 1). A request is an exchange_op, a small object its sender owns, handed to the pool by
// submit(): to an idle connection's loop (which wakes up), to a new connection (whose loop starts
// by connecting), or to the origin's FIFO queue, from which the next loop to finish an exchange
// takes it. The loop writes the request, reads the response into the op and completes it; then
// it takes the next queued op or parks until submit() hands it one. Nothing is spawned per
// request and no executor is type-erased per request: the per-request work is one queue
// hand-off, one gather write and the reads, with the loop's memory in a per-connection arena.
#ifndef TOKENFLIGHT_SRC_HTTP_POOL_IMPL_HPP
#define TOKENFLIGHT_SRC_HTTP_POOL_IMPL_HPP

#include <tokenflight/http/connection_pool.hpp>

#include "exchange.hpp"
#include "prepared.hpp"

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tokenflight::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

class pool_impl;
struct connection;
struct origin_pool;
struct h2_connection; // http2_transport.cpp
struct h2_transport;
struct h2_ops;

/// A cancellation type as the bits exchange_op::cancel collects.
constexpr unsigned bits(asio::cancellation_type t) noexcept { return static_cast<unsigned>(t); }
/// The cancellation types still honoured once a request's first byte is out: it may have had an
/// effect, so total cancellation ("no side effects") no longer can be.
constexpr unsigned once_sent = bits(asio::cancellation_type::terminal) | bits(asio::cancellation_type::partial);

/// t + d, or time_point::max() where that would overflow (a timeout of duration::max()).
inline clock::time_point later(clock::time_point t, clock::duration d) noexcept {
    return d < clock::time_point::max() - t ? t + d : clock::time_point::max();
}

/// How a request's response is read (see exchange.hpp).
enum class reader_kind : std::uint8_t { full, brief };
template <class Reader>
constexpr reader_kind kind_of() noexcept {
    return std::is_same_v<Reader, brief_reader> ? reader_kind::brief : reader_kind::full;
}

/// A request handed to the pool, from submit() to its completion; owned by its sender (a
/// pool_request, the client's request), which also owns what `wire` points into.
///
/// Cancellation, by phase, after Asio's rules for the three types. Until its first byte is
/// written a request has had no effect, so every type is honoured: it leaves the queue, or its
/// connect is abandoned. From then on it may have had one: total cancellation ("no side
/// effects") can no longer be honoured and is ignored; terminal and partial still end it by
/// closing the connection, which is never reused half-read.
struct exchange_op {
    enum class state : std::uint8_t { fresh, queued, assigned, done };

    // What to send, set by the sender before submit().
    const origin* to = nullptr;
    /// The client certificate to present (mutual TLS), or null for the pool's default; read by
    /// submit() only (it picks the origin pool), so it need not outlive that call.
    const client_identity* identity = nullptr;
    wire_request wire;
    clock::time_point started{}; // when it was sent through the pool (configure()): its latency's start
    clock::time_point deadline{};
    std::size_t body_limit = 0;
    bool idempotent = false;
    reader_kind kind = reader_kind::full;
    /// Called exactly once with the outcome, never under the pool's locks and never inside the
    /// emission of a cancellation signal: from a connection's loop, or posted.
    void (*on_complete)(exchange_op&) = nullptr;
    /// Destroys the op without completing it: its handler is destroyed, not invoked (the
    /// io_context was shut down with the op in flight or queued).
    void (*on_destroy)(exchange_op&) = nullptr;

    error_code ec; ///< the outcome (the response is in the typed_exchange_op)

    // The pool's bookkeeping, under the origin's mutex.
    state st = state::fresh;
    exchange_op* prev = nullptr; // in the origin's queue
    exchange_op* next = nullptr;
    clock::time_point queue_deadline{};
    connection* conn = nullptr; // while assigned
    std::uint64_t ticket = 0;   // the connection's count when assigned: matches a cancellation
    origin_pool* home = nullptr;
    // HTTP/2: the connection it is assigned to (in its inbox until `submitted`, then a stream),
    // and how often it was resent after a refusal.
    h2_connection* h2 = nullptr;
    bool submitted = false;
    std::uint8_t resends = 0;
    /// Cancellation types requested so far (from the sender's slot, any thread).
    std::atomic<unsigned> cancel{0};

    asio::cancellation_type cancelled() const noexcept {
        return static_cast<asio::cancellation_type>(cancel.load(std::memory_order_relaxed));
    }
};

template <class Reader>
struct typed_exchange_op : exchange_op {
    typename Reader::result_type res;
};

/// The event of a request that is over: response_received with its status, or request_failed.
inline pool_event outcome_event(const exchange_op& op, const origin* to, std::uint64_t connection,
                                clock::time_point now) {
    pool_event e{.to = to, .connection = connection, .elapsed = now - op.started};
    if (op.ec) {
        e.kind = pool_event_kind::request_failed;
        e.ec = op.ec;
    } else {
        e.kind = pool_event_kind::response_received;
        e.status = op.kind == reader_kind::brief ? static_cast<const typed_exchange_op<brief_reader>&>(op).res.status
                                                 : static_cast<const typed_exchange_op<full_reader>&>(op).res.result_int();
    }
    return e;
}

/// The cancellation handler a sender installs in its slot for an exchange_op.
struct exchange_canceller {
    exchange_canceller(pool_impl* p, exchange_op* o) noexcept : pool(p), op(o) {}
    pool_impl* pool;
    exchange_op* op;
    void operator()(asio::cancellation_type t) const;
};

/// Replaces resolve, connect and TLS by a factory of in-memory streams, whose other ends the
/// caller serves: the end-to-end fuzz target drives the whole client through it without a
/// socket, deterministically. Not for production use; there is no public way to set it.
using test_transport = std::function<std::unique_ptr<beast::test::stream>(const origin&)>;

/// Memory for the asynchronous operations of a connection's loop: one write or read at a time,
/// or the parking wait. Handlers of the loop allocate here (their associated allocator), so a
/// request in steady state takes nothing from the heap or Asio's per-thread cache; an operation
/// bigger than a slot, or a third at once, falls back to operator new. Slots are claimed with
/// atomics: an operation's memory is freed on the I/O thread that completes it, before its handler
/// runs on the loop's strand.
class handler_arena {
public:
    void* allocate(std::size_t n) {
        if (n <= slot_size)
            for (auto& s : slots_)
                if (!s.used.exchange(true, std::memory_order_acquire)) return s.bytes;
        return ::operator new(n);
    }
    void deallocate(void* p) noexcept {
        for (auto& s : slots_)
            if (p == s.bytes) {
                s.used.store(false, std::memory_order_release);
                return;
            }
        ::operator delete(p);
    }

private:
    static constexpr std::size_t slot_size = 1024;
    struct slot {
        alignas(std::max_align_t) unsigned char bytes[slot_size];
        std::atomic<bool> used{false};
    };
    slot slots_[2];
};

template <class T>
struct arena_allocator {
    using value_type = T;
    handler_arena* arena;
    explicit arena_allocator(handler_arena* a) noexcept : arena(a) {}
    template <class U>
    arena_allocator(const arena_allocator<U>& o) noexcept : arena(o.arena) {}
    T* allocate(std::size_t n) { return static_cast<T*>(arena->allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { arena->deallocate(p); }
    template <class U>
    bool operator==(const arena_allocator<U>& o) const noexcept { return arena == o.arena; }
};

/// One keep-alive connection and its loop's state.
struct connection : std::enable_shared_from_this<connection> {
    connection(asio::any_io_executor strand, origin_pool& home, std::shared_ptr<pool_impl> owner, bool events)
        : strand(std::move(strand)), home(home), owner(std::move(owner)), events(events),
          parking(this->strand, clock::time_point::max()), timer(this->strand) {}

    const asio::any_io_executor strand; // the loop, its timer and every close run here
    origin_pool& home;
    std::shared_ptr<pool_impl> owner; // while the loop runs: cleared when it ends
    handler_arena arena;
    const bool events; // the pool has an event hook: the loop reports (read here, not in the pool)
    ~connection();

    // The loop's state for the current request, on the strand only.
    int attempt = 0;
    bool reused = false;
    std::uint64_t running = 0; // the ticket of the request the loop has begun (0: none)
    exchange_state<full_reader> full_state;
    exchange_state<brief_reader> brief_state;

    // The stream, on the strand only.
    // Plain sockets, not Beast's tcp_stream: the pool keeps its own deadlines (the timer below),
    // and tcp_stream's per-operation bookkeeping (its own timers, a shared state copied per
    // operation, work guards) was a tenth of the instructions of a request.
    std::unique_ptr<asio::ip::tcp::socket> tcp;                     // plain http
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket>> tls;  // https
    std::unique_ptr<beast::test::stream> mem;                   // an in-memory test transport
    beast::flat_buffer buffer;
    bool open = false; // connected (and TLS handshaken): an exchange may be written
    bool offer_h2 = false; // TLS: ALPN offers h2 and http/1.1 (the HTTP/2 transport's link)
    // Events only: the stream's number (pool_event::connection; 0 while connecting), and whether
    // connection_opened was reported and connection_closed not yet.
    std::uint64_t id = 0;
    bool announced = false;

    // Under the origin's mutex.
    exchange_op* current = nullptr; // handed over by submit() or taken from the queue
    std::uint64_t ticket = 0;
    // The loop waits on it while idle (it never expires); a waker cancels the wait. Every call on
    // it is made under the origin's mutex, so wakers on any thread never race the loop. Not a
    // stored completion handler: posting a type-erased one converts its executor and tracks work,
    // two heap allocations per wake-up.
    asio::steady_timer parking;
    clock::time_point idle_since{};

    // The deadline of the current phase (connect, or the exchange), on the strand only. The timer
    // is lazy: a later deadline does not touch it; when it fires early it re-arms itself for the
    // deadline now in force, so a request costs a store here, not a timer operation.
    asio::steady_timer timer;
    clock::time_point deadline = clock::time_point::max();
    clock::time_point timer_at = clock::time_point::max();
    unsigned timer_id = 0;
    bool fired = false;                         // the current phase's deadline passed
    asio::steady_timer* resolve_wait = nullptr; // a resolve in progress
    bool sending = false;                       // the current op's first byte was written
    bool aborted = false;                       // the current op was cancelled: its I/O stopped

    // Plain http through a proxy: requests in absolute-form (RFC 9112 section 3.2.2), sent to the
    // proxy itself. Set by connect(); the current request's rewritten head, on the strand only,
    // wiped before it is rewritten again and with the connection (it may hold credentials).
    std::string forward_origin;       // "http://host:port"; empty: the connection is not forwarded
    secret forward_authorization;     // the Proxy-Authorization value; empty without one
    std::string forward_head;
    wire_request forward_wire;
    /// `w` with its request line in absolute-form and Proxy-Authorization added (forward_head).
    const wire_request& forwarded(const wire_request& w);

    /// The TCP socket under tcp or tls (not for mem).
    asio::ip::tcp::socket& lowest() noexcept { return tls ? tls->next_layer() : *tcp; }
    /// Closes the stream; pending operations end with operation_aborted. On the strand.
    void close() noexcept;
    /// Drops the stream objects: the next exchange connects afresh.
    void reset() noexcept;
};

/// The connections of one origin, and the requests waiting for one.
struct origin_pool {
    origin_pool(origin o, client_identity id, const asio::any_io_executor& ex)
        : where(std::move(o)), who(std::move(id)), queue_timer(ex) {}
    const origin where;
    const client_identity who; // the certificate its connections present (https only)
    std::mutex mutex;
    std::vector<std::shared_ptr<connection>> idle; // parked loops, most recently used last
    std::size_t open = 0;                          // idle + busy + connecting
    exchange_op* queue_head = nullptr;             // FIFO of requests waiting for a connection
    exchange_op* queue_tail = nullptr;
    // HTTP/2 (pool_options::version): whether requests go over it, until a server chooses
    // HTTP/1.1 by ALPN (or a proxy forwards plain http); the connections taking new streams, and
    // all of them (draining ones too).
    bool h2 = false;
    std::vector<std::shared_ptr<h2_connection>> h2_usable;
    std::size_t h2_open = 0;
    // Ends queue waits at their deadlines; armed for the earliest one (under the mutex).
    asio::steady_timer queue_timer;
    clock::time_point queue_timer_at = clock::time_point::max();
    unsigned queue_timer_id = 0;

    void push(exchange_op& op) noexcept;
    void push_front(exchange_op& op) noexcept; // a request given back: it was first in line
    exchange_op* pop() noexcept;
    void unlink(exchange_op& op) noexcept;
};

/// The live form of latency_histogram: one relaxed atomic per bucket, written by the loops.
class latency_recorder {
public:
    void record(clock::duration d) noexcept;
    latency_histogram snapshot() const noexcept;

private:
    std::array<std::atomic<std::uint64_t>, latency_histogram::bucket_count> counts_{};
};

class pool_impl : public std::enable_shared_from_this<pool_impl> {
    friend struct h2_transport;
    friend struct h2_ops; // the rest of the HTTP/2 transport (http2_transport.cpp)

public:
    pool_impl(asio::any_io_executor ex, pool_options options);

    /// Hands `op` over (any thread). Its fields up to on_complete must be set; `op` and what its
    /// wire points into stay valid until on_complete. Completes with errc::closed on a closed
    /// pool; never inside this call.
    void submit(exchange_op& op);
    /// Requests cancellation of `op` (from its slot's handler; see exchange_op).
    void cancel(exchange_op& op, asio::cancellation_type t);

    /// The whole send of a request as an asynchronous operation for tokenflight's own coroutines:
    /// `void(error_code, Reader::result_type)`. The buffers of `w` and `to` stay valid until completion.
    template <class Reader, class CompletionToken>
    auto async_exchange(const origin& to, const wire_request& w, const send_options& opts, CompletionToken&& token);

    /// Starts a send whose completion goes to `handler`, the request already in wire form; `keep`
    /// holds what the wire points into (a prepared request's state).
    template <class Reader>
    void start(asio::any_completion_handler<void(error_code, typename Reader::result_type)> handler,
               const origin& to, const wire_request& w, const send_options& opts, std::shared_ptr<const void> keep);
    /// Completes `handler` with `ec` (posted), a request refused before it reached the pool.
    template <class Reader>
    void fail(asio::any_completion_handler<void(error_code, typename Reader::result_type)> handler, error_code ec);
    /// The same for a Beast request: Host and User-Agent filled in, checked and serialised first.
    void start_message(asio::any_completion_handler<void(error_code, response)> handler, origin to, request req,
                       const send_options& opts);

    /// The parameters of one send: deadline, limits, whether it may be resent.
    void configure(exchange_op& op, const origin& to, const wire_request& w, const send_options& opts) const;

    void close();
    pool_stats stats() const;

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    /// The same executor as a completion executor, made once: the default for handlers without one
    /// of their own. Converting the any_io_executor per request would allocate (it does not fit in
    /// an any_completion_executor's small buffer); its io_context target does.
    const asio::any_completion_executor& completion_executor() const noexcept { return completion_ex_; }
    /// Outstanding work for a request's handler, tracked on its executor when that belongs to
    /// another execution context than the pool's (the pool's pending I/O keeps only its own
    /// running); empty otherwise, so the usual case allocates nothing.
    template <class Handler>
    asio::any_completion_executor work_for(const Handler& handler) const {
        auto handler_ex = asio::get_associated_executor(handler, completion_ex_);
        if (same_context(handler_ex)) return {};
        return asio::prefer(handler_ex, asio::execution::outstanding_work.tracked);
    }
    const pool_options& options() const noexcept { return options_; }
    /// See test_transport. Set before the first request.
    void set_test_transport(test_transport t) { test_transport_ = std::move(t); }

    /// A request failed before reaching the pool (a bad head): counted as sent and failed (its
    /// request_failed event comes with its completion, complete_later()).
    void count_rejected() noexcept {
        requests_.fetch_add(1, std::memory_order_relaxed);
        failures_.fetch_add(1, std::memory_order_relaxed);
    }

private:

    bool same_context(const asio::any_completion_executor& handler_ex) const noexcept;
    /// submit() without the count: to a connection, a new one, or the queue (also for a request
    /// an HTTP/2 connection hands back when its origin turned out to speak HTTP/1.1).
    void dispatch(exchange_op& op);
    /// The connections of `o` for `id` (a copy of options().tls.identity when null), made on
    /// first use. Plain http origins have one set, whatever the identity.
    origin_pool& pool_for(const origin& o, const client_identity* id);
    void assign(origin_pool& p, exchange_op& op, connection& c) noexcept;
    /// Resumes a parked loop taken out of the idle list (its `current` says what to do); under
    /// the origin's mutex.
    static void wake(connection& c) noexcept;
    void enqueue(origin_pool& p, exchange_op& op, bool front = false);
    void expire_queue(origin_pool& p, unsigned id);
public:
    /// Calls op.on_complete from the pool's executor, never inside the caller's frame; if the
    /// io_context is destroyed first, op.on_destroy. The op failed (op.ec): its request_failed
    /// event is reported there, first.
    void complete_later(exchange_op& op);
    /// Reports `op`'s request_failed event (only when there is an event hook).
    void report_failure(const exchange_op& op, clock::time_point now) const noexcept;
    /// Reports request_sent: the loop's request is written (only when c->events).
    static void on_written(const std::shared_ptr<connection>& c);

private:
    std::shared_ptr<connection> make_connection(origin_pool& p);

public:
    // A connection's loop, as steps run on its strand (connection_pool.cpp): begin a request
    // (c.current), connect if needed, exchange, finish (settle, complete, park or take the next).
    // Steady state is callbacks only: no coroutine frame, and the loop's handlers allocate from
    // the connection's arena.
    static void begin(const std::shared_ptr<connection>& c);
    static void on_connected(const std::shared_ptr<connection>& c, error_code ec);
    static void on_exchanged(const std::shared_ptr<connection>& c, const exchange_status& r);
    static void on_woken(const std::shared_ptr<connection>& c);

private:
    void attempt(const std::shared_ptr<connection>& c);
    void send(const std::shared_ptr<connection>& c);
    /// The request is over: `ec` is its outcome; the connection stays open for the next one if
    /// `reusable`.
    void finish(const std::shared_ptr<connection>& c, error_code ec, bool reusable);
    static void end(const std::shared_ptr<connection>& c);
    template <class Reader>
    void exchange_as(const std::shared_ptr<connection>& c, exchange_op& op);
    asio::awaitable<error_code> connect(connection& c, const origin& to);
    asio::awaitable<error_code> tunnel(connection& c, const origin& to, const proxy_route& via);
    /// Under the origin's mutex: the request is done; the connection takes the next queued one
    /// (c.current), parks (true: it joined the idle list), or leaves (c.current null).
    bool settle(connection& c, exchange_op& op, bool reusable, clock::time_point now);
    void on_cancel(const std::shared_ptr<connection>& c, std::uint64_t ticket);
    static void arm(const std::shared_ptr<connection>& c, clock::time_point at);
    static void on_timer(const std::shared_ptr<connection>& c, unsigned id, error_code ec);

    /// A request that completes without a connection's loop (queue timeout, cancelled while
    /// queued, dropped by close(), refused by a closed pool): counted as failed, its latency kept.
    void failed_off_loop(exchange_op& op) noexcept;

    // Events (pool_options::on_event); the loop's, on the connection's strand and only when c.events.
    void emit(const pool_event& e) const noexcept; // calls the hook; what it throws is dropped
    /// response_received or request_failed, then connection_closed if the connection will not be reused.
    void report_outcome(connection& c, const exchange_op& op, clock::time_point now, bool reusable) const;
    /// connection_closed, once per connection announced open.
    void report_closed(connection& c, error_code why) const;

    static asio::awaitable<void> sweep(std::weak_ptr<pool_impl> weak);
    /// Closes idle connections past idle_timeout; returns when the next of those left expires
    /// (time_point::max() when none is left).
    clock::time_point close_expired_idle();
    void start_sweeper();

    asio::any_io_executor ex_;
    asio::any_completion_executor completion_ex_;
    pool_options options_;
    std::unique_ptr<asio::ssl::context> ssl_;
    std::once_flag system_store_loaded_; // completed before any TLS stream uses ssl_
    mutable std::mutex origins_mutex_;
    // By origin and identity (tokenflight::detail::access::key): an identity's connections are
    // never handed to another's requests. The origin pools hold their identities, so a key
    // is never reused while its entry lives.
    std::map<std::pair<origin, const void*>, std::unique_ptr<origin_pool>> origins_;
    // The origin looked up last: a request to it skips the lock and the map. Origin pools live as
    // long as the pool, so a pointer read here stays valid.
    std::atomic<origin_pool*> last_origin_{nullptr};
    std::atomic<bool> closed_{false};
    // Closes idle connections once they pass idle_timeout, even with no traffic; runs only while
    // idle connections exist, so it never keeps an otherwise finished io_context running long.
    asio::steady_timer sweep_timer_;
    std::atomic<bool> sweeping_{false};

    std::atomic<std::uint64_t> requests_{0}, opened_{0}, reused_{0}, resends_{0}, failures_{0};
    std::atomic<std::uint64_t> h2_connections_{0}, h2_requests_{0};
    std::atomic<std::uint64_t> connections_made_{0}; // numbers connections for pool_event::connection
    latency_recorder latency_;
    test_transport test_transport_;
};

/// The completion of a request sent through the pool on behalf of a handler: delivers the
/// outcome on the handler's associated executor (the pool's when it has none), after the slot
/// was cleared and the request's memory freed, as Asio's rules ask.
template <class Reader>
struct pool_request final : typed_exchange_op<Reader> {
    using result_type = typename Reader::result_type;
    using handler_type = asio::any_completion_handler<void(error_code, result_type)>;

    pool_request(handler_type h, std::shared_ptr<pool_impl> p) : handler(std::move(h)), pool(std::move(p)) {}

    handler_type handler;
    std::shared_ptr<pool_impl> pool;
    asio::any_completion_executor work; // tracks work on the handler's executor, when not the pool's
    std::shared_ptr<const void> keep;   // what the wire points into
    // A Beast request's own storage (start_message).
    origin to_storage;
    request message;
    std::string head;
    bool sensitive = false;

    /// From a per-thread free list (recycler): no heap allocation per request.
    static pool_request* make(handler_type handler, std::shared_ptr<pool_impl> pool);
    static void destroy(exchange_op& op);
    /// Installs the cancellation handler and submits.
    void start();
    static void complete(exchange_op& op);
    void finish();
};

template <class Reader, class CompletionToken>
auto pool_impl::async_exchange(const origin& to, const wire_request& w, const send_options& opts,
                               CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, typename Reader::result_type)>(
        [self = shared_from_this(), &to, w, opts](auto handler) {
            self->template start<Reader>(std::move(handler), to, w, opts, nullptr);
        },
        token);
}


} // namespace tokenflight::http::detail

#endif
