// The pool's HTTP/2 transport (issue 19): see h2_transport.hpp and docs/design-notes.md, "HTTP/2".
//
// One h2_connection per socket. Its `link` is an ordinary pool connection used for what the two
// protocols share: the strand, the connect (resolve, proxy tunnel, TLS with SNI, verification,
// client certificate, ALPN) and the connect deadline. When the server picks HTTP/1.1 by ALPN
// the link becomes that origin's first HTTP/1.1 connection, so no handshake is wasted.
//
// Requests reach a connection's inbox under the origin's mutex (place()); the strand submits
// them as streams while the stream limit allows (drain()), reads and writes the socket, and
// completes each request when its stream ends. Deadlines, PING and idle time share one timer per
// connection. Nothing here waits for anything unbounded: every stream has its request's
// deadline, the connection its PING, and the session its limits.
#include "h2_transport.hpp"

#include "brief_parser.hpp"
#include "exchange.hpp"
#include "http2/session.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace tokenflight::http::detail {

namespace asio = boost::asio;

struct h2_connection : std::enable_shared_from_this<h2_connection> {
    h2_connection(std::shared_ptr<connection> l, origin_pool& p, std::shared_ptr<pool_impl> o, http2::limits lim,
                  std::size_t stream_cap)
        : link(std::move(l)), home(p), owner(std::move(o)), session(lim), cap(stream_cap),
          limit(std::min<std::size_t>(stream_cap, 100)), timer(link->strand) {}
    ~h2_connection();

    const std::shared_ptr<connection> link; // the socket, its strand and the connect deadline
    origin_pool& home;
    std::shared_ptr<pool_impl> owner; // cleared when the connection ends
    http2::client_session session;    // on the strand
    const std::size_t cap;            // http2_options::max_concurrent_streams

    // Under home.mutex.
    std::size_t active = 0; // requests assigned: in the inbox or streams
    std::size_t limit;      // streams at once: cap, and the server's limit once known
    bool usable = true;     // in home.h2_usable: takes new requests
    bool ready = false;     // connected: a drain submits the inbox
    bool drain_posted = false;
    bool counted = true; // in home.h2_open
    exchange_op* inbox_head = nullptr; // assigned, not yet submitted; linked by prev/next
    exchange_op* inbox_tail = nullptr;
    std::uint64_t tickets = 0;

    // On the strand.
    bool dead = false;    // the socket is closed: nothing more is read or written
    bool closing = false; // a GOAWAY is on its way out: close once it is written
    bool writing = false;
    bool limits_known = false;   // the server's first SETTINGS came
    std::uint32_t peer_limit = 0; // its MAX_CONCURRENT_STREAMS as last applied
    bool goaway_handled = false;
    clock::time_point write_started{}, settings_deadline = clock::time_point::max();
    std::unordered_map<std::int32_t, exchange_op*> streams;
    // Streams reset at their deadline (they end in request_timeout), and when: a reset that the
    // connection cannot get out (a server that stopped reading) ends the connection.
    std::unordered_map<std::int32_t, clock::time_point> expired;
    std::string out, in_flight;               // bytes to write, and those being written
    std::array<char, 16 * 1024> rbuf{};
    std::vector<http2::field_view> fields; // a request's fields while it is submitted
    clock::time_point last_read{}, ping_deadline = clock::time_point::max(), idle_since{};
    asio::steady_timer timer;
    clock::time_point timer_at = clock::time_point::max();
    unsigned timer_id = 0;
    std::uint64_t served = 0;
    std::uint64_t id = 0; // pool_event::connection
    bool announced = false;

    void push(exchange_op& op) noexcept {
        op.prev = inbox_tail;
        op.next = nullptr;
        (inbox_tail ? inbox_tail->next : inbox_head) = &op;
        inbox_tail = &op;
    }
    void unlink(exchange_op& op) noexcept {
        (op.prev ? op.prev->next : inbox_head) = op.next;
        (op.next ? op.next->prev : inbox_tail) = op.prev;
        op.prev = op.next = nullptr;
    }
    /// The whole inbox, linked by next. Each request is then the strand's (submitted): a
    /// cancellation goes through the strand, never to the inbox it left.
    exchange_op* take_inbox() noexcept {
        exchange_op* all = inbox_head;
        inbox_head = inbox_tail = nullptr;
        for (exchange_op* op = all; op; op = op->next) op->submitted = true;
        return all;
    }
};

h2_connection::~h2_connection() {
    // Only when the io_context was shut down with requests on this connection: their handlers are
    // destroyed, as Asio destroys those of every operation it will never complete.
    for (auto& [id, op] : streams) {
        op->st = exchange_op::state::done;
        op->on_destroy(*op);
    }
    for (exchange_op* op = take_inbox(); op;) {
        exchange_op* next = op->next;
        op->st = exchange_op::state::done;
        op->on_destroy(*op);
        op = next;
    }
}

namespace {


// The request's wire form (our own serialisation, checked when it was made: "METHOD target
// HTTP/1.1", then "Name: value" lines) as HTTP/2 fields. Host becomes :authority.
bool to_view(const wire_request& w, const origin& to, std::vector<http2::field_view>& fields, http2::request_view& v) {
    fields.clear();
    bool first = true;
    v.scheme = to.tls ? "https" : "http";
    v.authority = {};
    for (std::size_t i = 0; i < 3; ++i) {
        std::string_view part(static_cast<const char*>(w.parts[i].data()), w.parts[i].size());
        while (!part.empty()) {
            const auto eol = part.find("\r\n");
            if (eol == std::string_view::npos) return false;
            const auto line = part.substr(0, eol);
            part.remove_prefix(eol + 2);
            if (line.empty()) continue; // the blank line ending the head
            if (first) {
                first = false;
                const auto sp1 = line.find(' ');
                const auto sp2 = line.rfind(' ');
                if (sp1 == std::string_view::npos || sp2 <= sp1) return false;
                v.method = line.substr(0, sp1);
                v.path = line.substr(sp1 + 1, sp2 - sp1 - 1);
                continue;
            }
            const auto colon = line.find(':');
            if (colon == std::string_view::npos) return false;
            const auto name = line.substr(0, colon);
            auto value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
            if (name.size() == 4 && boost::beast::iequals(name, "host")) {
                v.authority = value;
                continue;
            }
            fields.emplace_back(name, value);
        }
    }
    if (first) return false;
    if (v.authority.empty()) return false; // every request path sets Host
    v.headers = fields;
    v.body = std::string_view(static_cast<const char*>(w.parts[3].data()), w.parts[3].size());
    return true;
}

// A stream's error as the pool's callers know errors (errc), whatever the protocol.
error_code public_error(const error_code& ec) {
    using http2::stream_errc;
    if (ec.category() != http2::stream_category()) return ec;
    switch (static_cast<stream_errc>(ec.value())) {
    case stream_errc::refused: return errc::stream_refused;
    case stream_errc::reset: return errc::stream_reset;
    case stream_errc::header_list_too_large: return errc::header_too_large;
    case stream_errc::body_too_large: return errc::body_too_large;
    case stream_errc::connection_error: return errc::http2_protocol_error;
    }
    return ec;
}

// The stream's response into the request's reader's result.
void deliver(exchange_op& op, http2::response&& r) {
    if (op.kind == reader_kind::brief) {
        auto& b = static_cast<typed_exchange_op<brief_reader>&>(op).res;
        b = {};
        b.status = r.status;
        b.body_size = r.body_size;
        b.keep_alive = true;
        for (const auto& [n, v] : r.headers) note_field(b, boost::beast::http::string_to_field(n), n, v);
        return;
    }
    auto& res = static_cast<typed_exchange_op<full_reader>&>(op).res;
    res = {};
    res.version(20);
    res.result(r.status);
    for (const auto& [n, v] : r.headers) res.insert(n, v);
    res.body() = std::move(r.body);
}

} // namespace

// The rest of the transport: members of h2_transport, a friend of pool_impl.
struct h2_ops {
    using ptr = std::shared_ptr<h2_connection>;

    static pool_impl& pool(h2_connection& c) { return *c.owner; }

    // ---- under the origin's mutex ------------------------------------------------------------

    static void assign(h2_connection& c, exchange_op& op) {
        op.st = exchange_op::state::assigned;
        op.h2 = &c;
        op.conn = nullptr;
        op.submitted = false;
        op.ticket = ++c.tickets;
        c.push(op);
        ++c.active;
        // Also while connecting: the drain then only arms the timer for the inbox's deadlines.
        if (!c.drain_posted) {
            c.drain_posted = true;
            asio::post(c.link->strand, [c = c.shared_from_this()] { drain(c); });
        }
    }

    /// Moves queued requests to `c` while it has free streams.
    static void pull(h2_connection& c) {
        while (c.usable && c.active < c.limit)
            if (exchange_op* op = c.home.pop())
                assign(c, *op);
            else
                break;
    }

    /// Queued requests to connections with room, or to new ones up to max_connections, while
    /// there are any (after requests were given back to the queue).
    static void spread(pool_impl& pool, origin_pool& p, std::vector<std::shared_ptr<h2_connection>>& spawned) {
        if (pool.closed_ || !p.h2) return; // close() failed the queue; an HTTP/1.1 origin's loops take it
        while (p.queue_head) {
            const bool room = std::any_of(p.h2_usable.begin(), p.h2_usable.end(),
                                          [](const ptr& x) { return x->active < x->limit; });
            if (!room && p.h2_usable.size() >= std::max<std::size_t>(1, pool.options_.http2.max_connections)) return;
            exchange_op* op = p.pop();
            std::shared_ptr<h2_connection> made;
            h2_transport::place(pool, p, *op, made);
            if (made) spawned.push_back(std::move(made));
        }
    }

    /// Starts what spread() opened (after the lock).
    static void start_all(std::vector<std::shared_ptr<h2_connection>>& spawned) {
        for (auto& n : spawned) h2_transport::start(std::move(n));
        spawned.clear();
    }

    /// `c` takes no new requests (a GOAWAY, a failure, the end): the origin's queue must not wait
    /// for it, so other connections (or new ones) take it.
    static void requeue_elsewhere(h2_connection& c) {
        std::vector<std::shared_ptr<h2_connection>> spawned;
        {
            std::lock_guard lock(c.home.mutex);
            withdraw(c);
            spread(pool(c), c.home, spawned);
        }
        start_all(spawned);
    }

    static void withdraw(h2_connection& c) { // takes no new requests
        if (!c.usable) return;
        c.usable = false;
        auto& v = c.home.h2_usable;
        v.erase(std::remove_if(v.begin(), v.end(), [&](const ptr& x) { return x.get() == &c; }), v.end());
    }

    // ---- on the strand -----------------------------------------------------------------------

    template <class F>
    static void with_stream(h2_connection& c, F&& f) {
        if (c.link->tls)
            f(*c.link->tls);
        else
            f(*c.link->tcp);
    }

    static void connect(const ptr& c) {
        pool_impl& p = pool(*c);
        c->link->reset();
        pool_impl::arm(c->link, clock::now() + p.options_.connect_timeout);
        const auto strand = c->link->strand;
        asio::co_spawn(strand, p.connect(*c->link, c->home.where), [c](std::exception_ptr ep, error_code ec) {
            if (ep) ec = boost::system::errc::make_error_code(boost::system::errc::not_enough_memory);
            on_connected(c, ec);
        });
    }

    static void on_connected(const ptr& c, error_code ec) {
        pool_impl& p = pool(*c);
        auto& link = *c->link;
        link.deadline = clock::time_point::max();
        if (link.fired && !ec) ec = errc::connect_timeout;
        if (c->dead) return;
        if (ec) return fail_to_connect(c, ec);
        bool h2 = link.forward_origin.empty(); // a forwarding proxy takes HTTP/1.1 requests only
        if (link.tls) {
            const unsigned char* proto = nullptr;
            unsigned len = 0;
            SSL_get0_alpn_selected(link.tls->native_handle(), &proto, &len);
            h2 = h2 && len == 2 && std::memcmp(proto, "h2", 2) == 0;
        }
        if (!h2) return fall_back(c);
        link.open = true;
        p.h2_connections_.fetch_add(1, std::memory_order_relaxed);
        if (link.events) [[unlikely]] {
            c->id = p.connections_made_.fetch_add(1, std::memory_order_relaxed) + 1;
            c->announced = true;
            p.emit({.kind = pool_event_kind::connection_opened, .to = &c->home.where, .connection = c->id});
        }
        c->last_read = clock::now();
        c->settings_deadline = later(c->last_read, p.options_.connect_timeout);
        {
            std::lock_guard lock(c->home.mutex);
            c->ready = true;
            c->idle_since = c->last_read;
        }
        read(c);
        drain(c); // the preface and SETTINGS go out with the first requests
        schedule(c, std::min(later(c->last_read, p.options_.http2.ping_interval), c->settings_deadline));
        maybe_close(c); // the pool was closed while it connected
    }

    /// The connect failed: the requests waiting for it fail with its error; queued ones get
    /// another connection.
    static void fail_to_connect(const ptr& c, error_code ec) {
        exchange_op* failed = nullptr;
        {
            std::lock_guard lock(c->home.mutex);
            withdraw(*c);
            failed = c->take_inbox();
            for (exchange_op* op = failed; op; op = op->next) {
                op->st = exchange_op::state::done;
                --c->active;
            }
        }
        const auto now = clock::now();
        for (exchange_op* op = failed; op;) {
            exchange_op* next = op->next;
            op->next = nullptr;
            op->ec = ec == errc::connect_timeout && now >= op->deadline ? error_code(errc::request_timeout) : ec;
            finish(*c, *op, now);
            op = next;
        }
        end(c, {}); // the queue goes to new connections, each failing with its own connect error
    }

    /// The server chose HTTP/1.1 (ALPN), or a proxy forwards plain http: the origin speaks
    /// HTTP/1.1 from now on, and the link is its first connection.
    static void fall_back(const ptr& c) {
        pool_impl& p = pool(*c);
        auto& home = c->home;
        exchange_op* rest = nullptr;
        bool keep = false;
        {
            std::lock_guard lock(home.mutex);
            home.h2 = false;
            withdraw(*c);
            if (c->counted) {
                c->counted = false;
                --home.h2_open;
            }
            rest = c->take_inbox();
            c->active = 0;
            c->ready = false;
            if (!rest) rest = home.pop();
            if (rest && !p.closed_) {
                exchange_op& first = *rest;
                rest = first.next;
                first.prev = first.next = nullptr;
                first.h2 = nullptr;
                p.assign(home, first, *c->link);
                ++home.open;
                keep = true;
            }
            // Queued requests go to HTTP/1.1 connections (dispatch() below opens them).
            exchange_op** tail = &rest;
            while (*tail) tail = &(*tail)->next;
            while (exchange_op* q = home.pop()) {
                *tail = q;
                tail = &q->next;
            }
            for (exchange_op* op = rest; op; op = op->next) { // not cancellable until dispatched
                op->h2 = nullptr;
                op->st = exchange_op::state::fresh;
            }
        }
        for (exchange_op* op = rest; op;) {
            exchange_op* next = op->next;
            op->prev = op->next = nullptr;
            p.dispatch(*op);
            op = next;
        }
        auto link = c->link;
        c->dead = true;
        ++c->timer_id;
        c->timer.cancel();
        c->owner.reset();
        if (!keep) {
            link->reset();
            return;
        }
        link->open = true;
        if (link->events) [[unlikely]] {
            link->id = p.connections_made_.fetch_add(1, std::memory_order_relaxed) + 1;
            link->announced = true;
            p.emit({.kind = pool_event_kind::connection_opened, .to = &home.where, .connection = link->id});
        }
        // As begin() does, except that the connection is new, not reused: no reuse counted, and
        // no stale-connection resend for its first request.
        link->running = link->current->ticket;
        link->sending = false;
        link->aborted = false;
        link->attempt = 1;
        link->reused = false;
        p.attempt(link);
    }

    static void read(const ptr& c) {
        with_stream(*c, [&](auto& s) {
            // Bound to the strand: the socket's own executor is the pool's.
            s.async_read_some(asio::buffer(c->rbuf), asio::bind_executor(c->link->strand, [c](error_code ec, std::size_t n) {
                                  on_read(c, ec, n);
                              }));
        });
    }

    static void on_read(const ptr& c, error_code ec, std::size_t n) {
        if (c->dead) return;
        if (ec) return fail(c, map_transport_error(ec, transport_phase::exchange));
        c->last_read = clock::now();
        error_code rec = c->session.receive(std::string_view(c->rbuf.data(), n));
        // A socket read hands the TLS engine every record that arrived, but an asynchronous
        // read takes one record at a time, each after a round through the reactor: the records
        // already here are taken at once, so that one pass answers them all (the requests their
        // responses free go out in one write, as h2load does, instead of one write each).
        if (c->link->tls)
            while (!rec) {
                SSL* ssl = c->link->tls->native_handle();
                ::ERR_clear_error();
                const int got = SSL_read(ssl, c->rbuf.data(), static_cast<int>(c->rbuf.size()));
                if (got <= 0) { // WANT_READ: no whole record left; anything else: the next read says it
                    ::ERR_clear_error();
                    break;
                }
                rec = c->session.receive(std::string_view(c->rbuf.data(), static_cast<std::size_t>(got)));
            }
        after_input(c);
        if (c->dead) return;
        if (rec || c->session.failed()) return fail(c, rec ? rec : error_code(http2::stream_errc::connection_error));
        read(c);
    }

    /// After the session took bytes in, or a timer or cancel changed it: limits, finished
    /// streams, a GOAWAY, the next requests, output.
    static void after_input(const ptr& c) {
        // The server's stream limit, at its first SETTINGS and whenever a later one changes it.
        if (c->session.settings_received() && (!c->limits_known || c->session.peer_max_streams() != c->peer_limit)) {
            c->limits_known = true;
            c->peer_limit = c->session.peer_max_streams();
            std::vector<std::shared_ptr<h2_connection>> spawned;
            {
                std::lock_guard lock(c->home.mutex);
                c->limit = std::max<std::size_t>(1, std::min<std::size_t>(c->cap, c->peer_limit));
                // Requests assigned beyond the server's limit (assumed 100 until its first
                // SETTINGS) go back to the front of the queue, in order, for another connection
                // or a later stream; on a closed pool they stay, and go out as streams free up.
                pool_impl& p = pool(*c);
                if (!p.closed_)
                    while (c->active > c->limit && c->inbox_tail) {
                        exchange_op& op = *c->inbox_tail;
                        c->unlink(op);
                        --c->active;
                        op.h2 = nullptr;
                        p.enqueue(c->home, op, true);
                    }
                pull(*c);
                spread(p, c->home, spawned);
            }
            start_all(spawned);
        }
        // A GOAWAY: this connection takes nothing new. Requests not yet streams go elsewhere,
        // and so does the queue. Counted as resends: a server that says GOAWAY to every new
        // connection would otherwise have them open and close connections until their deadlines.
        if (c->session.goaway_received() && !c->goaway_handled) {
            c->goaway_handled = true;
            hand_back_inbox(c, true);
        }
        flush(c); // RST_STREAM and the like: streams they close complete below
        complete_streams(c);
        if (c->dead) return;
        drain(c);
        maybe_close(c);
    }

    /// The connection takes no more streams: what waits in its inbox goes to other connections
    /// (a resend if `counted`), the origin's queue too.
    static void hand_back_inbox(const ptr& c, bool counted) {
        exchange_op* unsent = nullptr;
        {
            std::lock_guard lock(c->home.mutex);
            withdraw(*c);
            unsent = c->take_inbox();
        }
        for (exchange_op* op = unsent; op;) {
            exchange_op* next = op->next;
            op->next = nullptr;
            if (!resend(c, *op, counted)) {
                op->ec = op->cancelled() != asio::cancellation_type::none ? error_code(asio::error::operation_aborted)
                                                                           : error_code(errc::stream_refused);
                release(c, *op, clock::now());
            }
            op = next;
        }
        requeue_elsewhere(*c);
    }

    static void complete_streams(const ptr& c) {
        auto done = c->session.take_completed();
        if (done.empty()) return;
        const auto now = clock::now();
        for (auto& d : done) {
            auto it = c->streams.find(d.stream_id);
            if (it == c->streams.end()) continue;
            exchange_op& op = *it->second;
            c->streams.erase(it);
            error_code ec = d.error;
            if (c->expired.erase(d.stream_id) != 0) ec = errc::request_timeout;
            if (!ec) deliver(op, std::move(d.res));
            if (http2::resendable(ec) && resend(c, op)) continue;
            op.ec = public_error(ec);
            release(c, op, now);
        }
    }

    /// `op` was never processed by the server (or never sent: `counted` false): another
    /// connection gets it (this one, if it still takes streams), unless it was resent often
    /// enough. False: it stays this connection's, for the caller to complete.
    static bool resend(const ptr& c, exchange_op& op, bool counted = true) {
        pool_impl& p = pool(*c);
        if (op.cancelled() != asio::cancellation_type::none) return false;
        if (counted && op.resends >= p.options_.http2.max_resends) return false;
        std::shared_ptr<h2_connection> spawned;
        bool to_http1 = false;
        {
            std::lock_guard lock(c->home.mutex);
            if (p.closed_) return false;
            if (counted) ++op.resends; // while the op is still this connection's
            --c->active;
            op.h2 = nullptr;
            to_http1 = !c->home.h2;
            if (to_http1)
                op.st = exchange_op::state::fresh; // not cancellable until dispatched
            else
                h2_transport::place(p, c->home, op, spawned);
            pull(*c);
        }
        // From here `op` may be another connection's, or even complete: only an op that went to
        // no connection (fresh) is touched again.
        if (counted) p.resends_.fetch_add(1, std::memory_order_relaxed);
        if (to_http1) p.dispatch(op); // the origin fell back to HTTP/1.1
        if (spawned) h2_transport::start(std::move(spawned));
        return true;
    }

    /// A request of this connection is over (op.ec set, or its response delivered): counted,
    /// reported, its stream slot given to the next queued request, completed.
    static void release(const ptr& c, exchange_op& op, clock::time_point now) {
        {
            std::lock_guard lock(c->home.mutex);
            --c->active;
            op.st = exchange_op::state::done;
            op.h2 = nullptr;
            if (c->active == 0) c->idle_since = now;
            pull(*c);
        }
        finish(*c, op, now);
    }

    /// Counts and reports a request that is done (state and connection already settled), then
    /// completes it.
    static void finish(h2_connection& c, exchange_op& op, clock::time_point now) {
        pool_impl& p = pool(c);
        p.latency_.record(now - op.started);
        if (op.ec) p.failures_.fetch_add(1, std::memory_order_relaxed);
        if (c.link->events) [[unlikely]]
            p.emit(outcome_event(op, &c.home.where, c.id, now));
        op.on_complete(op);
    }

    /// Submits the inbox's requests as streams, as many as the stream limit allows.
    static void drain(const ptr& c) {
        exchange_op* batch = nullptr;
        auto waiting = clock::time_point::max(); // the earliest deadline left in the inbox
        {
            std::lock_guard lock(c->home.mutex);
            c->drain_posted = false;
            if (c->dead) return;
            if (!c->ready) {
                for (exchange_op* op = c->inbox_head; op; op = op->next) waiting = std::min(waiting, op->deadline);
                schedule(c, waiting); // (the timer is the strand's; scheduling takes no lock)
                return;
            }
            exchange_op** tail = &batch;
            // One stream until the server's SETTINGS say how many it takes: more could be
            // refused, and a refusal is paid for with a resend.
            const std::size_t limit = c->limits_known ? c->limit : 1;
            std::size_t room = limit > c->streams.size() ? limit - c->streams.size() : 0;
            while (room > 0 && c->inbox_head) {
                exchange_op* op = c->inbox_head;
                c->unlink(*op);
                op->submitted = true;
                *tail = op;
                tail = &op->next;
                --room;
            }
            for (exchange_op* op = c->inbox_head; op; op = op->next) waiting = std::min(waiting, op->deadline);
        }
        pool_impl& p = pool(*c);
        const auto now = clock::now();
        clock::time_point earliest = waiting;
        bool refused = false; // the session took no more streams
        while (batch) {
            exchange_op& op = *batch;
            batch = op.next;
            op.next = nullptr;
            if (op.cancel.load(std::memory_order_relaxed) != 0) { // before its first byte: any type
                op.ec = asio::error::operation_aborted;
                release(c, op, now);
                continue;
            }
            if (now >= op.deadline) {
                op.ec = errc::request_timeout;
                release(c, op, now);
                continue;
            }
            http2::request_view v;
            if (!to_view(op.wire, c->home.where, c->fields, v)) {
                op.ec = errc::invalid_request_target;
                release(c, op, now);
                continue;
            }
            v.body_limit = op.body_limit;
            v.keep_body = v.keep_fields = op.kind == reader_kind::full;
            auto id = c->session.submit(v);
            if (!id && id.error() == errc::closed) {
                // The session takes no more streams: a GOAWAY, stream ids used up, a server
                // limit lowered, or the session failed. This connection takes nothing new, and
                // the request, never sent, goes elsewhere uncounted.
                if (!refused) {
                    refused = true;
                    std::lock_guard lock(c->home.mutex);
                    withdraw(*c);
                }
                if (resend(c, op, false)) continue;
                op.ec = errc::stream_refused;
                release(c, op, now);
                continue;
            }
            if (!id) {
                op.ec = id.error();
                release(c, op, now);
                continue;
            }
            c->streams.emplace(*id, &op);
            p.h2_requests_.fetch_add(1, std::memory_order_relaxed);
            if (c->served++ > 0) {
                p.reused_.fetch_add(1, std::memory_order_relaxed);
                if (c->link->events) [[unlikely]]
                    p.emit({.kind = pool_event_kind::connection_reused, .to = &c->home.where, .connection = c->id});
            }
            if (c->link->events) [[unlikely]]
                p.emit({.kind = pool_event_kind::request_sent, .to = &c->home.where, .connection = c->id});
            earliest = std::min(earliest, op.deadline);
        }
        if (refused) hand_back_inbox(c, false);
        flush(c);
        schedule(c, earliest);
    }

    static void flush(const ptr& c) {
        if (c->dead || c->writing || !c->link->open) return;
        c->session.take_output(c->out);
        if (c->out.empty()) {
            if (c->closing) fail(c, {});
            return;
        }
        c->in_flight.swap(c->out);
        c->out.clear();
        c->writing = true;
        c->write_started = clock::now();
        with_stream(*c, [&](auto& s) {
            asio::async_write(s, asio::buffer(c->in_flight), asio::bind_executor(c->link->strand, [c](error_code ec, std::size_t) {
                c->writing = false;
                c->in_flight.clear();
                if (c->dead) return;
                if (ec) return fail(c, map_transport_error(ec, transport_phase::exchange));
                flush(c);
                complete_streams(c); // streams closed by what was just serialised (RST_STREAM)
                if (!c->dead) drain(c);
            }));
        });
    }

    /// A connection that takes no new streams closes once its last one is done: GOAWAY, then
    /// the socket once that is written.
    static void maybe_close(const ptr& c) {
        if (c->dead || c->closing || !c->link->open || !c->streams.empty()) return;
        {
            std::lock_guard lock(c->home.mutex);
            if (c->usable || c->inbox_head) return;
        }
        c->closing = true;
        c->session.shutdown();
        flush(c);
    }

    /// The socket is done (an error, or a clean close when `ec` is empty): open streams end,
    /// those the server never processed go to another connection.
    static void fail(const ptr& c, error_code ec) {
        if (c->dead) return;
        c->dead = true;
        c->link->close();
        exchange_op* unsent = nullptr;
        {
            std::lock_guard lock(c->home.mutex);
            withdraw(*c);
            c->ready = false;
            unsent = c->take_inbox();
        }
        complete_streams(c); // what the session already finished
        const bool goaway = c->session.goaway_received();
        const auto last = c->session.last_stream_id();
        auto open = std::move(c->streams);
        c->streams.clear();
        const auto now = clock::now();
        const error_code why = ec ? public_error(ec) : error_code(errc::connection_closed);
        for (auto& [id, op] : open) {
            error_code e = c->expired.count(id) ? error_code(errc::request_timeout)
                           : goaway && id > last ? error_code(http2::stream_errc::refused)
                                                 : why;
            if (http2::resendable(e) && resend(c, *op)) continue;
            op->ec = public_error(e);
            release(c, *op, now);
        }
        for (exchange_op* op = unsent; op;) { // never sent: another connection
            exchange_op* next = op->next;
            op->next = nullptr;
            if (!resend(c, *op)) {
                op->ec = why;
                release(c, *op, now);
            }
            op = next;
        }
        end(c, ec);
    }

    static void end(const ptr& c, error_code ec) {
        c->dead = true;
        // Closed, not destroyed: a read or write still pending completes (aborted) into the
        // stream it was started on; the stream goes with the connection, after its last handler.
        c->link->close();
        ++c->timer_id;
        c->timer.cancel();
        pool_impl& p = pool(*c);
        std::vector<std::shared_ptr<h2_connection>> spawned;
        {
            std::lock_guard lock(c->home.mutex);
            withdraw(*c);
            if (c->counted) {
                c->counted = false;
                --c->home.h2_open;
            }
            spread(p, c->home, spawned); // the queue never waits for a connection that is gone
        }
        start_all(spawned);
        if (c->announced) {
            c->announced = false;
            p.emit({.kind = pool_event_kind::connection_closed, .to = &c->home.where, .connection = c->id, .ec = ec});
        }
        auto last = std::move(c->owner); // may be the pool's last reference
    }

    // ---- the timer: deadlines, PING, idle ----------------------------------------------------

    /// The timer fires no later than `at` (a later `at` leaves an earlier wait alone).
    static void schedule(const ptr& c, clock::time_point at) {
        if (c->dead || at >= c->timer_at) return;
        c->timer_at = at;
        const unsigned id = ++c->timer_id;
        c->timer.expires_at(at);
        c->timer.async_wait([c, id](error_code ec) {
            if (ec == asio::error::operation_aborted || id != c->timer_id || c->dead) return;
            c->timer_at = clock::time_point::max();
            on_timer(c);
        });
    }

    static void on_timer(const ptr& c) {
        pool_impl& p = pool(*c);
        const auto& o = p.options_;
        const auto now = clock::now();
        auto next = clock::time_point::max();
        // Streams past their request's deadline are reset (CANCEL); they end in request_timeout.
        // One still not ended ping_timeout later, or a write outstanding that long: the server
        // reads nothing, and the connection ends (its streams with it).
        for (auto& [id, op] : c->streams) {
            if (op->deadline > now) {
                next = std::min(next, op->deadline);
                continue;
            }
            auto [at, fresh] = c->expired.emplace(id, now);
            if (fresh) c->session.cancel(id);
            const auto give_up = later(at->second, o.http2.ping_timeout);
            if (now >= give_up) return fail(c, http2::stream_errc::connection_error);
            next = std::min(next, give_up);
        }
        if (c->writing) {
            const auto give_up = later(c->write_started, o.http2.ping_timeout);
            if (now >= give_up) return fail(c, http2::stream_errc::connection_error);
            next = std::min(next, give_up);
        }
        // The server's SETTINGS, the first thing it must send, within connect_timeout.
        if (c->link->open && !c->limits_known) {
            if (now >= c->settings_deadline) return fail(c, http2::stream_errc::connection_error);
            next = std::min(next, c->settings_deadline);
        }
        // Requests still waiting for the connection (connecting, or over the stream limit).
        exchange_op* late = nullptr;
        {
            std::lock_guard lock(c->home.mutex);
            for (exchange_op* op = c->inbox_head; op;) {
                exchange_op* following = op->next;
                if (op->deadline <= now) {
                    c->unlink(*op);
                    op->submitted = true; // the strand's now (see take_inbox)
                    op->next = late;
                    late = op;
                } else {
                    next = std::min(next, op->deadline);
                }
                op = following;
            }
        }
        for (exchange_op* op = late; op;) {
            exchange_op* following = op->next;
            op->next = nullptr;
            op->ec = errc::request_timeout;
            release(c, *op, now);
            op = following;
        }
        if (c->link->open) {
            if (c->session.ping_outstanding()) {
                if (now >= c->ping_deadline) return fail(c, http2::stream_errc::connection_error); // no answer
                next = std::min(next, c->ping_deadline);
            } else if (later(c->last_read, o.http2.ping_interval) <= now) {
                c->session.ping();
                c->ping_deadline = later(now, o.http2.ping_timeout);
                next = std::min(next, c->ping_deadline);
            } else {
                next = std::min(next, later(c->last_read, o.http2.ping_interval));
            }
            std::lock_guard lock(c->home.mutex);
            if (c->active == 0) {
                if (now - c->idle_since >= o.idle_timeout)
                    withdraw(*c); // closes below (maybe_close)
                else
                    next = std::min(next, later(c->idle_since, o.idle_timeout));
            }
        }
        schedule(c, next);
        after_input(c);
    }

    static void cancel_stream(const ptr& c, std::uint64_t ticket) {
        if (c->dead) return;
        for (auto& [id, op] : c->streams) {
            if (op->ticket != ticket) continue;
            // Submitted: it may have had an effect, so total cancellation is not honoured.
            if ((op->cancel.load(std::memory_order_relaxed) & once_sent) == 0) return;
            c->session.cancel(id);
            return after_input(c);
        }
    }
};

void h2_transport::place(pool_impl& pool, origin_pool& p, exchange_op& op, std::shared_ptr<h2_connection>& spawned) {
    op.home = &p;
    for (auto& c : p.h2_usable)
        if (c->active < c->limit) return h2_ops::assign(*c, op);
    if (p.h2_usable.size() < std::max<std::size_t>(1, pool.options_.http2.max_connections)) {
        const auto& o = pool.options_;
        http2::limits l;
        l.max_header_list = o.header_limit;
        l.max_body = SIZE_MAX; // per request: send_options::body_limit
        l.max_continuations = o.http2.max_continuations;
        l.stream_window = static_cast<std::int32_t>(std::min<std::uint32_t>(o.http2.stream_window, INT32_MAX));
        l.connection_window = static_cast<std::int32_t>(std::min<std::uint32_t>(o.http2.connection_window, INT32_MAX));
        auto link = pool.make_connection(p);
        link->offer_h2 = true;
        auto c = std::make_shared<h2_connection>(std::move(link), p, pool.shared_from_this(), l,
                                                 std::max<std::size_t>(1, o.http2.max_concurrent_streams));
        p.h2_usable.reserve(p.h2_usable.size() + 1);
        p.h2_usable.push_back(c);
        ++p.h2_open;
        h2_ops::assign(*c, op);
        spawned = std::move(c);
        return;
    }
    pool.enqueue(p, op);
}

void h2_transport::start(std::shared_ptr<h2_connection> c) {
    const auto strand = c->link->strand;
    asio::post(strand, [c = std::move(c)] { h2_ops::connect(c); });
}

bool h2_transport::cancel(origin_pool&, exchange_op& op) {
    h2_connection& c = *op.h2;
    if (!op.submitted) {
        c.unlink(op);
        --c.active;
        op.st = exchange_op::state::done;
        op.ec = asio::error::operation_aborted;
        op.h2 = nullptr;
        if (c.active == 0) c.idle_since = clock::now();
        h2_ops::pull(c); // its slot goes to the next queued request
        return true;
    }
    asio::post(c.link->strand, [c = c.shared_from_this(), ticket = op.ticket] { h2_ops::cancel_stream(c, ticket); });
    return false;
}

void h2_transport::close(origin_pool& p) {
    auto all = std::move(p.h2_usable);
    p.h2_usable.clear();
    for (auto& c : all) {
        c->usable = false;
        asio::post(c->link->strand, [c] { h2_ops::maybe_close(c); });
    }
}

} // namespace tokenflight::http::detail
