#include <tokenflight/http/connection_pool.hpp>

#include "pool_impl.hpp"
#include "h2_transport.hpp"
#include "exchange.hpp"
#include "../access.hpp"
#include "../hook.hpp"
#include "../recycler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace tokenflight::http {

namespace detail {

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// OpenSSL's verify result as a typed error; none for X509_V_OK (the handshake failed otherwise).
error_code verify_failure(long result) {
    switch (result) {
    case X509_V_OK: return {};
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED: return errc::tls_untrusted_certificate;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return errc::tls_name_mismatch;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID: return errc::tls_certificate_expired;
    default: return errc::tls_verification_failed;
    }
}

// The executor of a connection's loop: a strand, over the io_context's own executor type when
// possible (it fits in an any_io_executor without a heap-allocated, reference-counted wrapper).
// No strand at all for an io_context made with concurrency hint 1: its owner promised that one
// thread runs it (Asio itself relies on that promise), so the loop's handlers, its timer and a
// cancellation's close are serialised already, and a strand hop per completion buys nothing.
asio::any_io_executor make_loop_strand(const asio::any_io_executor& ex) {
    if (const auto* io = ex.target<asio::io_context::executor_type>()) {
        if (asio::use_service<asio::detail::scheduler>(io->context()).concurrency_hint() == 1) return *io;
        return asio::make_strand(*io);
    }
    return asio::make_strand(ex);
}
} // namespace

namespace {
// The handlers of a connection's loop: they run on the connection's strand and allocate from its
// arena, and hold the connection (which holds the pool) until they ran.
struct loop_handler {
    std::shared_ptr<connection> c;
    using executor_type = asio::any_io_executor;
    executor_type get_executor() const noexcept { return c->strand; }
    using allocator_type = arena_allocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type(&c->arena); }
};
struct begin_handler : loop_handler {
    void operator()() { pool_impl::begin(c); }
};
struct exchanged_handler : loop_handler {
    void operator()(const exchange_status& r) { pool_impl::on_exchanged(c, r); }
    // Called by the exchange when the request's last byte is written.
    void on_written() const {
        if (c->events) [[unlikely]]
            pool_impl::on_written(c);
    }
};
struct woken_handler : loop_handler {
    void operator()(error_code) { pool_impl::on_woken(c); } // cancelled by a waker: expected
};
struct connected_handler : loop_handler {
    void operator()(std::exception_ptr ep, error_code ec) {
        if (ep) ec = boost::system::errc::make_error_code(boost::system::errc::not_enough_memory);
        pool_impl::on_connected(c, ec);
    }
};
} // namespace

// ---- the queue -------------------------------------------------------------------------------

void origin_pool::push(exchange_op& op) noexcept {
    op.prev = queue_tail;
    op.next = nullptr;
    (queue_tail ? queue_tail->next : queue_head) = &op;
    queue_tail = &op;
}

void origin_pool::push_front(exchange_op& op) noexcept {
    op.prev = nullptr;
    op.next = queue_head;
    (queue_head ? queue_head->prev : queue_tail) = &op;
    queue_head = &op;
}

exchange_op* origin_pool::pop() noexcept {
    exchange_op* op = queue_head;
    if (op) unlink(*op);
    return op;
}

void origin_pool::unlink(exchange_op& op) noexcept {
    (op.prev ? op.prev->next : queue_head) = op.next;
    (op.next ? op.next->prev : queue_tail) = op.prev;
    op.prev = op.next = nullptr;
}

// ---- connections ----------------------------------------------------------------------------

void connection::close() noexcept {
    open = false;
    if (mem) {
        mem->close();
        return;
    }
    // A connection whose resolve or connect failed has no stream yet: nothing to close.
    if (!tcp && !tls) return;
    error_code ec;
    auto& s = lowest();
    s.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    s.close(ec);
}

void connection::reset() noexcept {
    close();
    forward_origin.clear(); // the route is chosen again at the next connect
    tls.reset();
    tcp.reset();
    mem.reset();
    buffer.clear();
}

const wire_request& connection::forwarded(const wire_request& w) {
    OPENSSL_cleanse(forward_head.data(), forward_head.size());
    forward_head.clear();
    forward_wire = w;
    const std::string_view head(static_cast<const char*>(w.parts[0].data()), w.parts[0].size());
    // "METHOD SP /target SP HTTP/1.1 CRLF fields": only origin-form targets are rewritten (an
    // asterisk-form OPTIONS * goes as it is).
    const auto sp = head.find(' ');
    const auto eol = head.find("\r\n");
    if (sp == std::string_view::npos || eol == std::string_view::npos || sp + 1 >= eol || head[sp + 1] != '/')
        return forward_wire;
    const auto credential = forward_authorization.reveal();
    forward_head.reserve(head.size() + forward_origin.size() + (credential.empty() ? 0 : 23 + credential.size()));
    forward_head.append(head.substr(0, sp + 1));
    forward_head.append(forward_origin);
    forward_head.append(head.substr(sp + 1, eol + 2 - (sp + 1)));
    if (!credential.empty()) {
        forward_head.append("Proxy-Authorization: ");
        forward_head.append(credential);
        forward_head.append("\r\n");
    }
    forward_head.append(head.substr(eol + 2));
    forward_wire.parts[0] = asio::buffer(forward_head);
    return forward_wire;
}

connection::~connection() {
    OPENSSL_cleanse(forward_head.data(), forward_head.size());
    // Only when the io_context was shut down with a request in flight: its handler is
    // destroyed, as Asio destroys those of every operation it will never complete.
    if (exchange_op* op = std::exchange(current, nullptr)) {
        op->st = exchange_op::state::done;
        op->on_destroy(*op);
    }
}

void exchange_canceller::operator()(asio::cancellation_type t) const { pool->cancel(*op, t); }

bool pool_impl::same_context(const asio::any_completion_executor& handler_ex) const noexcept {
    const auto* a = handler_ex.target<asio::io_context::executor_type>();
    const auto* b = ex_.target<asio::io_context::executor_type>();
    return a && b && &a->context() == &b->context();
}

namespace {
const client_identity no_identity; // of every plain http origin pool

// `ex` as a completion executor, unwrapped to its io_context target when it has one (which fits
// in the small buffer; the any_io_executor itself does not).
asio::any_completion_executor completion_executor_of(const asio::any_io_executor& ex) {
    if (const auto* io = ex.target<asio::io_context::executor_type>()) return asio::any_completion_executor(*io);
    return asio::any_completion_executor(ex);
}
} // namespace

// ---- the pool -------------------------------------------------------------------------------

pool_impl::pool_impl(asio::any_io_executor ex, pool_options options)
    : ex_(std::move(ex)), completion_ex_(completion_executor_of(ex_)), options_(std::move(options)),
      sweep_timer_(asio::make_strand(ex_)) {
    ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ssl_->native_handle(), TLS1_2_VERSION);
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
    if (options_.tls.verify_peer) {
        ssl_->set_verify_mode(asio::ssl::verify_peer);
        if (!options_.tls.ca_file.empty()) ssl_->load_verify_file(options_.tls.ca_file); // throws
        // The system store (hundreds of certificates, about a third of a short run's instructions
        // in a profile) is loaded on the first https connection, not for pools that never use TLS.
    } else {
        ssl_->set_verify_mode(asio::ssl::verify_none);
    }
    // The user's additions (client certificate, versions, ciphers, ...) come last, so that they
    // can refine what is above; what it throws leaves the constructor.
    if (options_.tls.configure_context) options_.tls.configure_context(*ssl_);
}

origin_pool& pool_impl::pool_for(const origin& o, const client_identity* id) {
    if (!id || id->empty()) id = &options_.tls.identity;
    if (!o.tls) id = &no_identity;
    const void* key = tokenflight::detail::access::key(*id);
    if (origin_pool* last = last_origin_.load(std::memory_order_acquire);
        last && tokenflight::detail::access::key(last->who) == key && last->where == o)
        return *last;
    std::lock_guard lock(origins_mutex_);
    auto& p = origins_[{o, key}];
    if (!p) {
        p = std::make_unique<origin_pool>(o, *id, ex_);
        p->h2 = !test_transport_ && (options_.version == http_version::h2c ||
                                     (options_.version == http_version::http2 && o.tls));
    }
    last_origin_.store(p.get(), std::memory_order_release);
    return *p;
}

void pool_impl::configure(exchange_op& op, const origin& to, const wire_request& w, const send_options& opts) const {
    const auto now = clock::now();
    op.to = &to;
    op.wire = w;
    op.started = now;
    op.deadline = now + opts.timeout.value_or(options_.request_timeout);
    op.body_limit = opts.body_limit.value_or(options_.body_limit);
    op.idempotent = opts.idempotent.value_or(is_idempotent(w.method));
    op.identity = opts.identity ? &opts.identity : nullptr;
}

std::shared_ptr<connection> pool_impl::make_connection(origin_pool& p) {
    return std::make_shared<connection>(make_loop_strand(ex_), p, shared_from_this(), static_cast<bool>(options_.on_event));
}

void pool_impl::assign(origin_pool&, exchange_op& op, connection& c) noexcept {
    op.st = exchange_op::state::assigned;
    op.conn = &c;
    op.ticket = ++c.ticket;
    c.current = &op;
}

void pool_impl::submit(exchange_op& op) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    dispatch(op);
}

void pool_impl::dispatch(exchange_op& op) {
    origin_pool& p = pool_for(*op.to, op.identity);
    std::shared_ptr<connection> woken, spawned;
    std::shared_ptr<h2_connection> spawned_h2;
    bool failed = false;
    {
        std::lock_guard lock(p.mutex);
        op.home = &p;
        if (closed_) {
            op.ec = errc::closed;
            failed = true;
        } else if (op.cancel.load(std::memory_order_relaxed) != 0) {
            op.ec = asio::error::operation_aborted; // cancelled before it was handed over
            failed = true;
        } else if (p.h2) {
            h2_transport::place(*this, p, op, spawned_h2);
        } else {
            const auto now = clock::now();
            while (!p.idle.empty()) {
                auto c = std::move(p.idle.back());
                p.idle.pop_back();
                if (now - c->idle_since >= options_.idle_timeout) {
                    --p.open; // its loop, woken with nothing to do, closes it
                    wake(*c);
                    continue;
                }
                woken = std::move(c);
                break;
            }
            if (woken) {
                assign(p, op, *woken);
                wake(*woken);
            } else if (p.open < options_.max_connections_per_origin) {
                spawned = make_connection(p); // may throw: nothing changed yet
                p.idle.reserve(p.open + 1);   // so a connection going idle never allocates
                ++p.open;
                assign(p, op, *spawned);
            } else {
                enqueue(p, op);
            }
        }
        if (failed) op.st = exchange_op::state::done;
    }
    if (failed) {
        failed_off_loop(op);
        complete_later(op);
    } else if (spawned) {
        const auto strand = spawned->strand;
        asio::post(strand, begin_handler{{std::move(spawned)}});
    } else if (spawned_h2) {
        h2_transport::start(std::move(spawned_h2));
    }
}

void pool_impl::wake(connection& c) noexcept {
    try {
        c.parking.cancel(); // the loop's wait ends with operation_aborted, on its strand
    } catch (...) { // cannot fail for a timer without an error to report; nothing to undo if it did
    }
}

void pool_impl::enqueue(origin_pool& p, exchange_op& op, bool front) {
    op.queue_deadline = std::min(op.deadline, clock::now() + options_.queue_timeout);
    if (op.queue_deadline < p.queue_timer_at) { // else an earlier wait ends first and re-arms
        // Armed before the request is linked: if this throws, nothing refers to it.
        const unsigned id = p.queue_timer_id + 1;
        p.queue_timer.expires_at(op.queue_deadline);
        p.queue_timer.async_wait([self = shared_from_this(), &p, id](error_code ec) {
            if (ec != asio::error::operation_aborted) self->expire_queue(p, id);
        });
        p.queue_timer_id = id;
        p.queue_timer_at = op.queue_deadline;
    }
    op.st = exchange_op::state::queued;
    if (front)
        p.push_front(op);
    else
        p.push(op);
}

void pool_impl::expire_queue(origin_pool& p, unsigned id) {
    exchange_op* expired = nullptr; // linked through `next`
    {
        std::lock_guard lock(p.mutex);
        if (id != p.queue_timer_id) return; // re-armed since: that wait is in charge
        p.queue_timer_at = clock::time_point::max();
        const auto now = clock::now();
        auto earliest = clock::time_point::max();
        for (exchange_op* op = p.queue_head; op;) {
            exchange_op* next = op->next;
            if (op->queue_deadline <= now) {
                p.unlink(*op);
                op->st = exchange_op::state::done;
                op->ec = errc::queue_timeout;
                op->next = expired;
                expired = op;
            } else {
                earliest = std::min(earliest, op->queue_deadline);
            }
            op = next;
        }
        if (earliest != clock::time_point::max()) {
            p.queue_timer_at = earliest;
            const unsigned again = ++p.queue_timer_id;
            p.queue_timer.expires_at(earliest);
            p.queue_timer.async_wait([self = shared_from_this(), &p, again](error_code ec) {
                if (ec != asio::error::operation_aborted) self->expire_queue(p, again);
            });
        }
    }
    while (expired) {
        exchange_op* op = expired;
        expired = op->next;
        op->next = nullptr;
        failed_off_loop(*op);
        if (options_.on_event) report_failure(*op, clock::now());
        op->on_complete(*op);
    }
}

namespace {
// A completion posted for an op: runs it, or destroys the op if it is dropped unrun (the
// io_context destroyed with it queued). With a reporter, the op's request_failed event first
// (the op's sender keeps the pool alive until the op completes or is destroyed).
class posted_completion {
public:
    posted_completion(exchange_op& op, const pool_impl* reporter) noexcept : op_(&op), reporter_(reporter) {}
    posted_completion(posted_completion&& o) noexcept : op_(std::exchange(o.op_, nullptr)), reporter_(o.reporter_) {}
    posted_completion& operator=(posted_completion&&) = delete;
    ~posted_completion() {
        if (op_) op_->on_destroy(*op_);
    }
    void operator()() {
        exchange_op* op = std::exchange(op_, nullptr);
        if (reporter_) reporter_->report_failure(*op, clock::now());
        op->on_complete(*op);
    }

private:
    exchange_op* op_;
    const pool_impl* reporter_;
};
} // namespace

void pool_impl::complete_later(exchange_op& op) {
    asio::post(ex_, posted_completion(op, options_.on_event ? this : nullptr));
}

void pool_impl::failed_off_loop(exchange_op& op) noexcept {
    failures_.fetch_add(1, std::memory_order_relaxed);
    latency_.record(clock::now() - op.started);
}

void pool_impl::cancel(exchange_op& op, asio::cancellation_type t) {
    if (t == asio::cancellation_type::none) return;
    op.cancel.fetch_or(bits(t), std::memory_order_relaxed);
    origin_pool* p = op.home;
    if (!p) return; // not handed over yet: submit() sees the request
    std::shared_ptr<connection> c;
    std::uint64_t ticket = 0;
    {
        std::lock_guard lock(p->mutex);
        switch (op.st) {
        case exchange_op::state::queued:
            p->unlink(op);
            op.st = exchange_op::state::done;
            op.ec = asio::error::operation_aborted;
            break;
        case exchange_op::state::assigned:
            if (op.h2) {
                if (!h2_transport::cancel(*p, op)) return; // its connection's strand sees to it
                break;                                      // taken out before it was sent
            }
            c = op.conn->shared_from_this();
            ticket = op.ticket;
            break;
        default: return; // completed: nothing left to cancel
        }
    }
    if (c) {
        asio::post(c->strand, [self = shared_from_this(), c, ticket] { self->on_cancel(c, ticket); });
    } else {
        failed_off_loop(op);
        complete_later(op); // not inside the signal's emission
    }
}

void pool_impl::on_cancel(const std::shared_ptr<connection>& c, std::uint64_t ticket) {
    exchange_op* op = nullptr;
    {
        std::lock_guard lock(c->home.mutex);
        if (c->ticket != ticket || !c->current) return; // that request is over
        op = c->current;
    }
    // Not begun yet: the loop sees the cancellation when it begins (and the flags below are still
    // the previous request's).
    if (c->running != ticket) return;
    unsigned t = op->cancel.load(std::memory_order_relaxed);
    if (c->sending) t &= once_sent; // it may have had an effect: total is not honoured
    if (t == 0 || c->aborted) return;
    c->aborted = true;
    if (c->resolve_wait) c->resolve_wait->cancel(); // the loop stops waiting for the resolver
    c->close();                                     // pending connect, handshake, write or read end
}

// ---- the deadline of a connection's current phase ---------------------------------------------

void pool_impl::arm(const std::shared_ptr<connection>& c, clock::time_point at) {
    c->deadline = at;
    c->fired = false;
    if (at >= c->timer_at) return; // the armed wait ends first and re-arms for `at`
    c->timer_at = at;
    const unsigned id = ++c->timer_id;
    c->timer.expires_at(at); // a pending wait ends with operation_aborted and does nothing
    c->timer.async_wait([c, id](error_code ec) { on_timer(c, id, ec); });
}

void pool_impl::on_timer(const std::shared_ptr<connection>& c, unsigned id, error_code ec) {
    if (ec == asio::error::operation_aborted || id != c->timer_id) return;
    c->timer_at = clock::time_point::max();
    if (c->deadline == clock::time_point::max()) return; // between phases: nothing to watch
    if (clock::now() < c->deadline) {
        arm(c, c->deadline); // armed for an earlier phase: wait for this one's deadline
        return;
    }
    c->fired = true;
    if (c->resolve_wait) c->resolve_wait->cancel();
    c->close(); // however many bytes keep arriving
}

// ---- a connection's loop ---------------------------------------------------------------------

void pool_impl::begin(const std::shared_ptr<connection>& c) {
    // c->current is what submit() or the last settle handed over; none: close and leave.
    if (!c->current) return end(c);
    c->running = c->current->ticket;
    c->sending = false;
    c->aborted = false;
    c->attempt = 0;
    c->reused = c->open;
    c->owner->attempt(c);
}

void pool_impl::attempt(const std::shared_ptr<connection>& c) {
    exchange_op& op = *c->current;
    // Before its first byte, any cancellation ends the request; after, total no longer does.
    if ((op.cancel.load(std::memory_order_relaxed) & (c->sending ? once_sent : ~0u)) != 0)
        return finish(c, asio::error::operation_aborted, c->open); // nothing sent: the connection is as good as before
    if (!c->open) {
        c->reset();
        c->id = 0; // a new stream: numbered once it is open
        arm(c, std::min(op.deadline, clock::now() + options_.connect_timeout));
        const auto strand = c->strand; // own statement: co_spawn takes the executor by reference
        asio::co_spawn(strand, connect(*c, c->home.where), connected_handler{{c}});
        return;
    }
    if (c->attempt == 0) {
        reused_.fetch_add(1, std::memory_order_relaxed);
        if (c->events) [[unlikely]]
            emit({.kind = pool_event_kind::connection_reused, .to = &c->home.where, .connection = c->id});
    }
    send(c);
}

void pool_impl::on_connected(const std::shared_ptr<connection>& c, error_code ec) {
    pool_impl& self = *c->owner;
    c->deadline = clock::time_point::max();
    if (c->aborted)
        ec = asio::error::operation_aborted;
    else if (c->fired) // the deadline passed after the handshake, and closed the socket
        ec = errc::connect_timeout;
    if (ec) {
        if (ec == errc::connect_timeout && clock::now() >= c->current->deadline) ec = errc::request_timeout;
        return self.finish(c, ec, false);
    }
    c->open = true;
    if (c->events) [[unlikely]] {
        c->id = self.connections_made_.fetch_add(1, std::memory_order_relaxed) + 1;
        c->announced = true;
        self.emit({.kind = pool_event_kind::connection_opened, .to = &c->home.where, .connection = c->id});
    }
    self.send(c);
}

void pool_impl::send(const std::shared_ptr<connection>& c) {
    exchange_op& op = *c->current;
    c->sending = true; // from here a cancellation on its way is filtered as once sent
    arm(c, op.deadline);
    if (op.kind == reader_kind::brief)
        exchange_as<brief_reader>(c, op);
    else
        exchange_as<full_reader>(c, op);
}

// The exchange for the request's reader on the connection's stream, writing the response into
// the request.
template <class Reader>
void pool_impl::exchange_as(const std::shared_ptr<connection>& c, exchange_op& op) {
    const exchange_limits limits{options_.header_limit, op.body_limit};
    auto& res = static_cast<typed_exchange_op<Reader>&>(op).res;
    exchange_state<Reader>* st = nullptr;
    if constexpr (std::is_same_v<Reader, brief_reader>)
        st = &c->brief_state;
    else
        st = &c->full_state;
    if (c->tls)
        start_exchange<Reader>(*c->tls, c->buffer, op.wire, limits, res, *st, exchanged_handler{{c}});
    else if (c->mem)
        start_exchange<Reader>(*c->mem, c->buffer, op.wire, limits, res, *st, exchanged_handler{{c}});
    else if (c->forward_origin.empty())
        start_exchange<Reader>(*c->tcp, c->buffer, op.wire, limits, res, *st, exchanged_handler{{c}});
    else
        start_exchange<Reader>(*c->tcp, c->buffer, c->forwarded(op.wire), limits, res, *st, exchanged_handler{{c}});
}

void pool_impl::on_exchanged(const std::shared_ptr<connection>& c, const exchange_status& r) {
    pool_impl& self = *c->owner;
    exchange_op& op = *c->current;
    c->deadline = clock::time_point::max();
    error_code ec = r.ec;
    if (c->fired)
        ec = errc::request_timeout;
    else if (c->aborted)
        ec = asio::error::operation_aborted;
    if (!ec) return self.finish(c, {}, r.reusable);
    c->reset();
    if (c->events) [[unlikely]]
        self.report_closed(*c, ec);
    // A keep-alive connection the server already dropped fails before any response byte: resend
    // once on a fresh connection, if resending cannot do harm.
    const bool stale = c->reused && !r.got_bytes && ec != errc::request_timeout && ec != asio::error::operation_aborted;
    if (stale && op.idempotent && c->attempt == 0) {
        self.resends_.fetch_add(1, std::memory_order_relaxed);
        c->reused = false;
        c->attempt = 1;
        return self.attempt(c);
    }
    self.finish(c, ec, false);
}

void pool_impl::finish(const std::shared_ptr<connection>& c, error_code ec, bool reusable) {
    exchange_op& op = *c->current;
    c->running = 0;
    // One clock read for the latency and, when the connection parks, its idle time.
    const auto now = clock::now();
    latency_.record(now - op.started);
    if (ec) {
        op.ec = ec;
        failures_.fetch_add(1, std::memory_order_relaxed);
    }
    if (c->events) [[unlikely]]
        report_outcome(*c, op, now, reusable);
    if (!reusable) c->reset();
    // The request is settled and the next one found, or the connection parks until submit()
    // hands it one. The completion runs only then, so a caller that sends again from its
    // completion handler reuses this connection.
    bool park = false;
    {
        std::lock_guard lock(c->home.mutex);
        park = settle(*c, op, reusable, now);
        if (park) {
            try {
                c->parking.async_wait(woken_handler{{c}}); // a waker cancels it
                c->home.idle.push_back(c);                 // capacity reserved: does not throw
            } catch (...) { // no memory for the wait: the connection leaves instead of parking
                --c->home.open;
                park = false;
            }
        }
    }
    op.on_complete(op);
    if (park)
        start_sweeper();
    else
        asio::post(c->strand, begin_handler{{c}}); // the next queued request, or the end
}

void pool_impl::on_woken(const std::shared_ptr<connection>& c) { begin(c); }

void pool_impl::end(const std::shared_ptr<connection>& c) {
    c->reset();
    if (c->events) [[unlikely]] // idle past idle_timeout, or the pool closed
        c->owner->report_closed(*c, c->owner->closed_ ? error_code(errc::closed) : error_code());
    ++c->timer_id;
    c->deadline = clock::time_point::max();
    c->timer.cancel();
    auto last = std::move(c->owner); // may be the pool's last reference: nothing touches it after
}

bool pool_impl::settle(connection& c, exchange_op& op, bool reusable, clock::time_point now) {
    origin_pool& p = c.home;
    op.st = exchange_op::state::done;
    c.current = nullptr;
    if (closed_) {
        --p.open;
        return false;
    }
    if (exchange_op* next = p.pop()) { // open or not: a closed connection's slot is the next one's permit
        assign(p, *next, c);
        return false;
    }
    if (!reusable) {
        --p.open;
        return false;
    }
    c.idle_since = now;
    return true; // the caller parks it and adds it to the idle list
}

asio::awaitable<error_code> pool_impl::connect(connection& c, const origin& to) {
    if (test_transport_) {
        c.mem = test_transport_(to);
        if (!c.mem) co_return asio::error::connection_refused;
        opened_.fetch_add(1, std::memory_order_relaxed);
        co_return error_code{};
    }
    // Asio resolves with a blocking getaddrinfo on a thread of its own, which cancel() cannot
    // interrupt: awaiting the resolve itself would let a slow DNS server hold the request past
    // every deadline. The lookup instead completes into state it shares, and the loop waits on a
    // timer that the lookup, the deadline or a cancellation ends; a lookup left behind finishes on
    // its own and frees that state.
    struct lookup {
        explicit lookup(const asio::any_io_executor& ex) : resolver(ex), done(ex, clock::time_point::max()) {}
        asio::ip::tcp::resolver resolver;
        asio::steady_timer done;
        error_code ec;
        asio::ip::tcp::resolver::results_type endpoints;
        bool finished = false;
    };
    auto route = route_for(to, options_.proxy, [](const char* name) { return std::getenv(name); });
    if (!route) co_return route.error();
    const origin& dial = *route ? (*route)->proxy : to; // the TCP peer: the proxy, or the origin
    auto l = std::make_shared<lookup>(c.strand);
    l->resolver.async_resolve(dial.host, std::to_string(dial.port),
                              [l](error_code ec, asio::ip::tcp::resolver::results_type r) {
                                  l->ec = ec;
                                  l->endpoints = std::move(r);
                                  l->finished = true;
                                  l->done.cancel();
                              });
    c.resolve_wait = &l->done;
    co_await l->done.async_wait(tuple_awaitable); // ends by the lookup, the deadline or a cancellation
    c.resolve_wait = nullptr;
    if (!l->finished) {
        l->resolver.cancel(); // a lookup not yet started is dropped; a running one is abandoned
        if (c.fired) co_return errc::connect_timeout;
        co_return asio::error::operation_aborted; // cancelled
    }
    if (c.fired) co_return errc::connect_timeout;
    if (l->ec) co_return l->ec;
    const auto endpoints = std::move(l->endpoints);

    if (to.tls) {
        std::call_once(system_store_loaded_, [this] {
            if (options_.tls.verify_peer && options_.tls.use_system_store) {
                error_code ignored; // a machine without a system store still has ca_file
                ssl_->set_default_verify_paths(ignored);
            }
        });
        c.tls = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(ex_, *ssl_);
    } else {
        c.tcp = std::make_unique<asio::ip::tcp::socket>(ex_);
    }
    if (c.aborted) co_return asio::error::operation_aborted; // cancelled while resolving
    auto& tcp = c.lowest();
    auto [cec, ep] = co_await asio::async_connect(tcp, endpoints, tuple_awaitable);
    if (c.fired) co_return errc::connect_timeout;
    if (cec) co_return map_transport_error(cec, transport_phase::connect);
    error_code no_delay_failure; // best effort: without TCP_NODELAY the request is only slower
    tcp.set_option(asio::ip::tcp::no_delay(true), no_delay_failure);
    opened_.fetch_add(1, std::memory_order_relaxed);
    if (*route && to.tls) {
        if (auto tec = co_await tunnel(c, to, **route)) co_return tec;
    } else if (*route) {
        // Plain http: the proxy is the peer, and each request names the origin (absolute-form).
        c.forward_origin = "http://" + to.authority();
        c.forward_authorization = (*route)->authorization;
    }

    if (c.tls) {
        // RFC 6066 section 3: an IP literal is never a server name.
        error_code not_ip;
        (void)asio::ip::make_address(to.host, not_ip);
        if (not_ip && !SSL_set_tlsext_host_name(c.tls->native_handle(), to.host.c_str()))
            co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        // OpenSSL checks the name (RFC 6125) or the address inside chain verification, so a
        // mismatch has its own verify result, reported as errc::tls_name_mismatch.
        SSL* ssl = c.tls->native_handle();
        if (!tokenflight::detail::access::present(c.home.who, ssl)) co_return errc::invalid_client_certificate;
        if (options_.tls.verify_peer) {
            const bool set = not_ip ? SSL_set1_host(ssl, to.host.c_str()) == 1
                                    : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), to.host.c_str()) == 1;
            if (!set) co_return errc::tls_verification_failed;
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        // HTTP/2 over TLS is chosen by ALPN (RFC 9113 section 3.2), HTTP/1.1 when the server
        // picks it or does not speak ALPN.
        if (c.offer_h2) {
            static constexpr unsigned char protocols[] = "\x02h2\x08http/1.1";
            if (SSL_set_alpn_protos(ssl, protocols, sizeof protocols - 1) != 0)
                co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        }
        auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
        if (c.fired) co_return errc::connect_timeout;
        if (hec) {
            if (options_.tls.verify_peer)
                if (auto v = verify_failure(SSL_get_verify_result(ssl))) co_return v;
            co_return map_transport_error(hec, transport_phase::connect);
        }
    }
    co_return error_code{};
}

// A CONNECT tunnel (RFC 9110 section 9.3.6) to `to` through the proxy `c` is connected to: the
// request, then the proxy's answer head, read within the header limit and the connect deadline.
// For https origins only (plain http ones are forwarded). Nothing of the answer's body is read: a 2xx
// answer to CONNECT has none, and the origin's bytes follow.
asio::awaitable<error_code> pool_impl::tunnel(connection& c, const origin& to, const proxy_route& via) {
    auto& tcp = c.lowest();
    std::string authority = to.host.find(':') != std::string::npos ? "[" + to.host + "]" : to.host;
    authority += ':';
    authority += std::to_string(to.port);
    std::string req;
    req.reserve(64 + 2 * authority.size() + via.authorization.reveal().size());
    req += "CONNECT ";
    req += authority;
    req += " HTTP/1.1\r\nHost: ";
    req += authority;
    req += "\r\n";
    if (!via.authorization.empty()) {
        req += "Proxy-Authorization: ";
        req += via.authorization.reveal();
        req += "\r\n";
    }
    req += "\r\n";
    auto [wec, written] = co_await asio::async_write(tcp, asio::buffer(req), tuple_awaitable);
    OPENSSL_cleanse(req.data(), req.size()); // the proxy credential
    if (c.fired) co_return errc::connect_timeout;
    if (wec) co_return map_transport_error(wec, transport_phase::connect);

    asio::streambuf answer(options_.header_limit);
    auto [rec, head] = co_await asio::async_read_until(tcp, answer, "\r\n\r\n", tuple_awaitable);
    if (c.fired) co_return errc::connect_timeout;
    if (rec == asio::error::not_found) co_return errc::header_too_large;
    if (rec) co_return map_transport_error(rec, transport_phase::connect);
    // Bytes past the head before the client spoke: not a tunnel this client can use.
    if (answer.size() != head) co_return errc::proxy_refused;
    const std::string_view text(static_cast<const char*>(answer.data().data()), head);
    // "HTTP/1.x NNN ..."
    if (text.size() < 12 || !text.starts_with("HTTP/1.") || text[8] != ' ' || text[9] != '2')
        co_return errc::proxy_refused;
    co_return error_code{};
}

// ---- idle connections and closing -----------------------------------------------------------

void pool_impl::start_sweeper() {
    if (sweeping_.load(std::memory_order_relaxed)) return; // every park asks: keep the usual answer cheap
    bool expected = false;
    if (closed_ || !sweeping_.compare_exchange_strong(expected, true)) return;
    asio::co_spawn(sweep_timer_.get_executor(), sweep(weak_from_this()), asio::detached);
}

clock::time_point pool_impl::close_expired_idle() {
    std::vector<origin_pool*> pools;
    {
        std::lock_guard lock(origins_mutex_);
        for (auto& [o, p] : origins_) pools.push_back(p.get());
    }
    auto next = clock::time_point::max();
    const auto now = clock::now();
    for (auto* p : pools) {
        std::lock_guard lock(p->mutex);
        // Oldest first: idle connections are pushed as they are released.
        auto it = p->idle.begin();
        for (; it != p->idle.end() && now - (*it)->idle_since >= options_.idle_timeout; ++it)
            wake(**it); // woken with nothing to do: it closes
        p->open -= static_cast<std::size_t>(it - p->idle.begin());
        p->idle.erase(p->idle.begin(), it);
        if (!p->idle.empty()) // the oldest left expires first
            next = std::min(next, later(p->idle.front()->idle_since, options_.idle_timeout));
    }
    return next;
}

asio::awaitable<void> pool_impl::sweep(std::weak_ptr<pool_impl> weak) {
    // Started by a connection that went idle just now (no other was idle): none expires sooner.
    // Not a look at once: a busy pool's connections are rarely all idle, and a sweeper that
    // found none would end, to be spawned again (a coroutine frame) by the next one to park.
    clock::time_point next{};
    {
        auto self = weak.lock();
        if (!self) co_return;
        next = later(clock::now(), self->options_.idle_timeout);
    }
    for (;;) {
        asio::steady_timer* timer = nullptr;
        {
            auto self = weak.lock();
            if (!self || self->closed_) co_return;
            // For the oldest idle connection's expiry: a program that leaves its pool open returns
            // from run() idle_timeout after its last request.
            timer = &self->sweep_timer_;
            timer->expires_at(next);
        }
        // Waits holding no reference: destroying the pool destroys the timer, which ends the wait;
        // `timer` is not touched again unless the pool is still there. close() cancels it.
        co_await timer->async_wait(tuple_awaitable); // fired or cancelled: look again
        auto self = weak.lock();
        if (!self || self->closed_) co_return;
        next = self->close_expired_idle();
        if (next == clock::time_point::max()) {
            self->sweeping_ = false;
            // A connection that went idle just now found the flag still set: look once more, and
            // go on sweeping for it unless it started a sweeper of its own meanwhile.
            next = self->close_expired_idle();
            bool expected = false;
            if (next == clock::time_point::max() || !self->sweeping_.compare_exchange_strong(expected, true)) co_return;
        }
    }
}

void pool_impl::close() {
    if (closed_.exchange(true)) return;
    asio::post(sweep_timer_.get_executor(), [self = shared_from_this()] { self->sweep_timer_.cancel(); });
    std::vector<origin_pool*> pools;
    {
        std::lock_guard lock(origins_mutex_);
        for (auto& [o, p] : origins_) pools.push_back(p.get());
    }
    for (auto* p : pools) {
        exchange_op* dropped = nullptr; // linked through `next`
        {
            std::lock_guard lock(p->mutex);
            for (auto& c : p->idle) wake(*c);
            p->open -= p->idle.size();
            p->idle.clear();
            while (exchange_op* op = p->pop()) {
                op->st = exchange_op::state::done;
                op->ec = errc::closed;
                op->next = dropped;
                dropped = op;
            }
            ++p->queue_timer_id;
            p->queue_timer.cancel();
            h2_transport::close(*p);
        }
        while (dropped) {
            exchange_op* op = dropped;
            dropped = op->next;
            op->next = nullptr;
            failed_off_loop(*op);
            complete_later(*op);
        }
    }
}

// ---- events -------------------------------------------------------------------------------------

void pool_impl::emit(const pool_event& e) const noexcept {
    tokenflight::detail::call_hook(options_.on_event, e);
}

void pool_impl::on_written(const std::shared_ptr<connection>& c) {
    c->owner->emit({.kind = pool_event_kind::request_sent, .to = &c->home.where, .connection = c->id});
}

void pool_impl::report_outcome(connection& c, const exchange_op& op, clock::time_point now, bool reusable) const {
    emit(outcome_event(op, &c.home.where, c.id, now));
    if (!reusable) report_closed(c, op.ec); // after an error it was reported where the error came
}

void pool_impl::report_closed(connection& c, error_code why) const {
    if (!c.announced) return; // never opened, or reported already
    c.announced = false;
    emit({.kind = pool_event_kind::connection_closed, .to = &c.home.where, .connection = c.id, .ec = why});
}

void pool_impl::report_failure(const exchange_op& op, clock::time_point now) const noexcept {
    const bool reached_pool = op.started != clock::time_point{}; // else refused before configure()
    emit({.kind = pool_event_kind::request_failed,
          .to = op.to,
          .ec = op.ec,
          .elapsed = reached_pool ? now - op.started : clock::duration::zero()});
}

// ---- latency ------------------------------------------------------------------------------------

void latency_recorder::record(clock::duration d) noexcept {
    counts_[latency_histogram::bucket_of(d)].fetch_add(1, std::memory_order_relaxed);
}

latency_histogram latency_recorder::snapshot() const noexcept {
    latency_histogram h;
    for (std::size_t i = 0; i < h.counts.size(); ++i) h.counts[i] = counts_[i].load(std::memory_order_relaxed);
    return h;
}

pool_stats pool_impl::stats() const {
    pool_stats s;
    s.requests = requests_.load(std::memory_order_relaxed);
    s.connections_opened = opened_.load(std::memory_order_relaxed);
    s.connections_reused = reused_.load(std::memory_order_relaxed);
    s.resends = resends_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    s.http2_connections = h2_connections_.load(std::memory_order_relaxed);
    s.http2_requests = h2_requests_.load(std::memory_order_relaxed);
    s.latency = latency_.snapshot();
    std::lock_guard lock(origins_mutex_);
    for (auto& [o, p] : origins_) {
        std::lock_guard plock(p->mutex);
        s.open_connections += p->open + p->h2_open;
    }
    return s;
}

// ---- requests on behalf of a completion handler ----------------------------------------------

namespace {
// Overwrites what a sensitive request (a token request: client secret, Basic credential) left in
// memory once it is sent: the serialised head, the body and the header values.
void wipe(request& req, std::string& head) {
    if (!head.empty()) OPENSSL_cleanse(head.data(), head.size());
    if (!req.body().empty()) OPENSSL_cleanse(req.body().data(), req.body().size());
    for (auto& f : req) {
        const auto v = f.value();
        if (!v.empty()) OPENSSL_cleanse(const_cast<char*>(v.data()), v.size());
    }
}
} // namespace

template <class Reader>
pool_request<Reader>* pool_request<Reader>::make(handler_type handler, std::shared_ptr<pool_impl> pool) {
    void* mem = tokenflight::detail::recycler<pool_request>::allocate();
    pool_request* op = nullptr;
    try {
        op = new (mem) pool_request(std::move(handler), std::move(pool));
    } catch (...) {
        tokenflight::detail::recycler<pool_request>::deallocate(mem);
        throw;
    }
    op->kind = kind_of<Reader>();
    op->on_complete = &pool_request::complete;
    op->on_destroy = &pool_request::destroy;
    op->work = op->pool->work_for(op->handler);
    return op;
}

template <class Reader>
void pool_request<Reader>::start() {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.template emplace<exchange_canceller>(pool.get(), this);
    try {
        pool->submit(*this); // throws only before the request was handed over
    } catch (...) {
        destroy(*this);
        throw;
    }
}

template <class Reader>
void pool_request<Reader>::destroy(exchange_op& base) {
    auto& self = static_cast<pool_request&>(base);
    auto slot = asio::get_associated_cancellation_slot(self.handler);
    if (slot.is_connected()) slot.clear();
    if (self.sensitive) wipe(self.message, self.head);
    self.~pool_request();
    tokenflight::detail::recycler<pool_request>::deallocate(&self);
}

template <class Reader>
void pool_request<Reader>::complete(exchange_op& base) {
    auto& self = static_cast<pool_request&>(base);
    auto handler_ex = asio::get_associated_executor(self.handler, self.pool->completion_executor());
    asio::dispatch(handler_ex, [op = &self] { op->finish(); });
}

template <class Reader>
void pool_request<Reader>::finish() {
    // On the handler's executor, where its cancellation signal is emitted: never during an emission.
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.clear();
    if (sensitive) wipe(message, head);
    auto h = std::move(handler);
    auto keep_working = std::move(work); // until the handler ran
    const error_code outcome = this->ec;
    result_type r = std::move(this->res);
    this->~pool_request();
    tokenflight::detail::recycler<pool_request>::deallocate(this);
    std::move(h)(outcome, std::move(r));
}

template <class Reader>
void pool_impl::start(asio::any_completion_handler<void(error_code, typename Reader::result_type)> handler,
                      const origin& to, const wire_request& w, const send_options& opts, std::shared_ptr<const void> keep) {
    auto* op = pool_request<Reader>::make(std::move(handler), shared_from_this());
    op->keep = std::move(keep);
    configure(*op, to, w, opts);
    op->start();
}

template <class Reader>
void pool_impl::fail(asio::any_completion_handler<void(error_code, typename Reader::result_type)> handler, error_code ec) {
    auto* op = pool_request<Reader>::make(std::move(handler), shared_from_this());
    op->ec = ec;
    count_rejected();
    complete_later(*op);
}

void pool_impl::start_message(asio::any_completion_handler<void(error_code, response)> handler, origin to, request req,
                              const send_options& opts) {
    auto* op = pool_request<full_reader>::make(std::move(handler), shared_from_this());
    op->to_storage = std::move(to);
    op->message = std::move(req);
    op->sensitive = opts.sensitive;
    auto& m = op->message;
    set_default_fields(m, op->to_storage, options_.user_agent);
    m.prepare_payload();
    // The head is checked and serialised once, before any connection is taken: a header that
    // could inject a line fails here and nothing is sent.
    if (auto ec = serialize_request_head(m, op->head)) {
        op->to = &op->to_storage; // for its request_failed event
        op->ec = ec;
        count_rejected();
        complete_later(*op);
        return;
    }
    configure(*op, op->to_storage, wire_of(op->head, m), opts);
    op->start();
}

template void pool_impl::start<full_reader>(asio::any_completion_handler<void(error_code, response)>, const origin&,
                                            const wire_request&, const send_options&, std::shared_ptr<const void>);
template void pool_impl::start<brief_reader>(asio::any_completion_handler<void(error_code, brief_response)>,
                                             const origin&, const wire_request&, const send_options&,
                                             std::shared_ptr<const void>);
template void pool_impl::fail<full_reader>(asio::any_completion_handler<void(error_code, response)>, error_code);
template void pool_impl::fail<brief_reader>(asio::any_completion_handler<void(error_code, brief_response)>, error_code);

} // namespace detail

// ---- latency_histogram --------------------------------------------------------------------------

namespace {
constexpr std::size_t first_octave = 3; // log2(latency_histogram::sub_buckets): 8 us
static_assert(std::size_t{1} << first_octave == latency_histogram::sub_buckets);
} // namespace

std::size_t latency_histogram::bucket_of(clock::duration d) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    if (us < static_cast<std::int64_t>(sub_buckets)) return us < 0 ? 0 : static_cast<std::size_t>(us);
    const auto v = static_cast<std::uint64_t>(us);
    const auto e = static_cast<std::size_t>(std::bit_width(v)) - 1; // v in [2^e, 2^(e+1)), e >= 3
    if (e >= first_octave + octaves) return bucket_count - 1;
    const auto sub = static_cast<std::size_t>(v >> (e - first_octave)) & (sub_buckets - 1);
    return sub_buckets + (e - first_octave) * sub_buckets + sub;
}

clock::duration latency_histogram::upper_bound(std::size_t i) noexcept {
    using us = std::chrono::microseconds;
    if (i < sub_buckets) return us(static_cast<us::rep>(i + 1));
    if (i >= bucket_count - 1) return clock::duration::max();
    const std::size_t k = i - sub_buckets;
    return us(static_cast<us::rep>((sub_buckets + k % sub_buckets + 1) << (k / sub_buckets)));
}

std::uint64_t latency_histogram::total() const noexcept {
    std::uint64_t n = 0;
    for (auto c : counts) n += c;
    return n;
}

clock::duration latency_histogram::percentile(double q) const noexcept {
    const std::uint64_t n = total();
    if (n == 0) return clock::duration::zero();
    if (!(q > 0)) q = 0; // NaN too
    if (q > 1) q = 1;
    const auto rank = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n))), 1, n);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts[i];
        if (seen >= rank) return upper_bound(i);
    }
    return clock::duration::max(); // not reached: seen ends at n
}

latency_histogram& latency_histogram::operator+=(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts[i] += other.counts[i];
    return *this;
}

connection_pool::connection_pool(executor_type ex, pool_options options)
    : impl_(std::make_shared<detail::pool_impl>(std::move(ex), std::move(options))) {}

connection_pool::~connection_pool() { impl_->close(); }

void connection_pool::close() { impl_->close(); }
pool_stats connection_pool::stats() const { return impl_->stats(); }
connection_pool::executor_type connection_pool::get_executor() const noexcept { return impl_->executor(); }
const pool_options& connection_pool::options() const noexcept { return impl_->options(); }

namespace {
template <class Reader>
void start_prepared(const std::shared_ptr<detail::pool_impl>& impl,
                    boost::asio::any_completion_handler<void(error_code, typename Reader::result_type)> handler,
                    const prepared_request& req, const send_options& opts) {
    auto state = detail::prepared_access::shared_state(req);
    if (!state) return impl->fail<Reader>(std::move(handler), boost::asio::error::invalid_argument); // empty
    const auto w = state->wire(nullptr);
    const origin& to = state->where.origin; // held by the request until completion
    impl->start<Reader>(std::move(handler), to, w, opts, std::move(state));
}
} // namespace

void connection_pool::initiate_prepared(const std::shared_ptr<detail::pool_impl>& impl,
                                        boost::asio::any_completion_handler<send_signature> handler,
                                        const prepared_request& req, send_options opts) {
    start_prepared<detail::full_reader>(impl, std::move(handler), req, opts);
}

void connection_pool::initiate_brief(const std::shared_ptr<detail::pool_impl>& impl,
                                     boost::asio::any_completion_handler<brief_signature> handler,
                                     const prepared_request& req, send_options opts) {
    start_prepared<detail::brief_reader>(impl, std::move(handler), req, opts);
}

void connection_pool::initiate_send(const std::shared_ptr<detail::pool_impl>& impl,
                                    boost::asio::any_completion_handler<send_signature> handler, origin to,
                                    request req, send_options opts) {
    impl->start_message(std::move(handler), std::move(to), std::move(req), opts);
}

} // namespace tokenflight::http
