#include <tokenflight/http/connection_pool.hpp>

#include "pool_impl.hpp"
#include "exchange.hpp"
#include "../spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace tokenflight::http {

namespace detail {

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

bool cancelled(const asio::cancellation_state& st) { return st.cancelled() != asio::cancellation_type::none; }

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

} // namespace

void connection::close() noexcept {
    if (mem) {
        mem->close();
        return;
    }
    // A connection whose resolve or connect failed has no stream yet: nothing to close.
    if (!tcp && !tls) return;
    error_code ec;
    auto& s = lowest().socket();
    s.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    s.close(ec);
}

pool_impl::pool_impl(asio::any_io_executor ex, pool_options options)
    : ex_(std::move(ex)), strands_(ex_), options_(std::move(options)), sweep_timer_(asio::make_strand(ex_)) {
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
}

origin_pool& pool_impl::pool_for(const origin& o) {
    std::lock_guard lock(origins_mutex_);
    auto& p = origins_[o];
    if (!p) p = std::make_unique<origin_pool>();
    return *p;
}

asio::awaitable<pool_impl::acquired> pool_impl::acquire(origin_pool& p, bool fresh, clock::time_point deadline) {
    acquired out;
    const auto my_strand = co_await asio::this_coro::executor;
    std::vector<std::unique_ptr<connection>> expired;
    std::shared_ptr<waiter> w;
    {
        std::lock_guard lock(p.mutex);
        if (closed_) {
            out.ec = errc::closed;
            co_return std::move(out); // explicit: GCC 12 copies a named co_return operand
        }
        const auto now = clock::now();
        while (!fresh && !p.idle.empty()) {
            auto c = std::move(p.idle.back());
            p.idle.pop_back();
            if (now - c->idle_since >= options_.idle_timeout) {
                expired.push_back(std::move(c));
                --p.open;
                continue;
            }
            out.conn = std::move(c);
            out.reused = true;
            break;
        }
        if (!out.conn) {
            if (p.open < options_.max_connections_per_origin) {
                ++p.open; // a permit to open a new connection
            } else if (fresh && !p.idle.empty()) {
                expired.push_back(std::move(p.idle.back())); // trade an idle one for a fresh one
                p.idle.pop_back();
            } else {
                w = std::make_shared<waiter>(my_strand);
                p.waiters.push_back(w);
            }
        }
    }
    for (auto& c : expired) c->close();
    if (!w) co_return std::move(out);

    w->timer.expires_at(std::min(deadline, clock::now() + options_.queue_timeout));
    auto [wait_ec] = co_await w->timer.async_wait(tuple_awaitable);
    {
        std::lock_guard lock(p.mutex);
        if (!w->granted) {
            std::erase(p.waiters, w);
            out.ec = wait_ec == asio::error::operation_aborted ? error_code(asio::error::operation_aborted)
                                                               : error_code(errc::queue_timeout);
            co_return std::move(out);
        }
    }
    if (w->closed) {
        out.ec = errc::closed;
        co_return std::move(out);
    }
    out.conn = std::move(w->conn);
    if (out.conn && fresh) {
        out.conn->close(); // its slot becomes our permit
        out.conn.reset();
    }
    out.reused = out.conn != nullptr;
    co_return std::move(out);
}

void pool_impl::release(origin_pool& p, std::unique_ptr<connection> c, bool reusable) {
    std::shared_ptr<waiter> wake;
    {
        std::lock_guard lock(p.mutex);
        if (closed_) reusable = false;
        if (!p.waiters.empty()) {
            wake = std::move(p.waiters.front());
            p.waiters.pop_front();
            wake->granted = true;
            if (reusable) wake->conn = std::move(c); // else: the slot passes on as a permit
        } else if (reusable && c) {
            c->idle_since = clock::now();
            p.idle.push_back(std::move(c));
        } else {
            --p.open;
        }
    }
    if (c) c->close();
    if (wake) asio::post(wake->timer.get_executor(), [wake] { wake->timer.cancel(); });
    else if (reusable) start_sweeper();
}

void pool_impl::start_sweeper() {
    bool expected = false;
    if (closed_ || !sweeping_.compare_exchange_strong(expected, true)) return;
    asio::co_spawn(sweep_timer_.get_executor(), sweep(weak_from_this()), asio::detached);
}

bool pool_impl::close_expired_idle() {
    std::vector<origin_pool*> pools;
    {
        std::lock_guard lock(origins_mutex_);
        for (auto& [o, p] : origins_) pools.push_back(p.get());
    }
    bool remaining = false;
    const auto now = clock::now();
    for (auto* p : pools) {
        std::vector<std::unique_ptr<connection>> expired;
        {
            std::lock_guard lock(p->mutex);
            // Oldest first: idle connections are pushed as they are released.
            auto it = p->idle.begin();
            while (it != p->idle.end() && now - (*it)->idle_since >= options_.idle_timeout) ++it;
            expired.assign(std::make_move_iterator(p->idle.begin()), std::make_move_iterator(it));
            p->idle.erase(p->idle.begin(), it);
            p->open -= expired.size();
            remaining = remaining || !p->idle.empty();
        }
        for (auto& c : expired) c->close();
    }
    return remaining;
}

asio::awaitable<void> pool_impl::sweep(std::weak_ptr<pool_impl> weak) {
    for (;;) {
        asio::steady_timer* timer = nullptr;
        {
            auto self = weak.lock();
            if (!self || self->closed_) co_return;
            timer = &self->sweep_timer_;
            timer->expires_after(std::max<clock::duration>(self->options_.idle_timeout / 2, std::chrono::milliseconds(10)));
        }
        // Waits holding no reference: destroying the pool destroys the timer, which ends the wait;
        // `timer` is not touched again unless the pool is still there.
        co_await timer->async_wait(asio::as_tuple(asio::use_awaitable)); // fired or cancelled: look again
        auto self = weak.lock();
        if (!self || self->closed_) co_return;
        if (!self->close_expired_idle()) {
            self->sweeping_ = false;
            // A connection that went idle just now found the flag still set: look once more.
            if (self->close_expired_idle()) self->start_sweeper();
            co_return;
        }
    }
}

void watchdog::arm(const std::shared_ptr<watchdog>& w, clock::time_point at) {
    w->fired = false;
    w->timer.expires_at(at); // cancels a pending wait: its handler sees operation_aborted
    const unsigned id = ++w->armed;
    w->timer.async_wait([w, id](error_code ec) {
        if (ec || id != w->armed) return;
        w->fired = true;
        if (w->resolve_wait) w->resolve_wait->cancel(); // the request stops waiting for the resolver
        if (w->conn) w->conn->close(); // pending reads and writes end with operation_aborted
    });
}

asio::awaitable<error_code> pool_impl::connect(connection& c, const origin& to, watchdog& dog) {
    if (test_transport_) {
        c.mem = test_transport_(to);
        if (!c.mem) co_return asio::error::connection_refused;
        opened_.fetch_add(1, std::memory_order_relaxed);
        co_return error_code{};
    }
    auto ex = co_await asio::this_coro::executor;
    // Asio resolves with a blocking getaddrinfo on a thread of its own, which cancel() cannot
    // interrupt: awaiting the resolve itself would let a slow DNS server hold the request past
    // every deadline. The lookup instead completes into state it shares, and the request waits
    // on a timer that the lookup, the watchdog or the caller's cancellation ends; a lookup left
    // behind finishes on its own and frees that state.
    struct lookup {
        explicit lookup(const asio::any_io_executor& ex) : resolver(ex), done(ex, clock::time_point::max()) {}
        asio::ip::tcp::resolver resolver;
        asio::steady_timer done;
        error_code ec;
        asio::ip::tcp::resolver::results_type endpoints;
        bool finished = false;
    };
    auto l = std::make_shared<lookup>(ex);
    l->resolver.async_resolve(to.host, std::to_string(to.port),
                              [l](error_code ec, asio::ip::tcp::resolver::results_type r) {
                                  l->ec = ec;
                                  l->endpoints = std::move(r);
                                  l->finished = true;
                                  l->done.cancel();
                              });
    dog.resolve_wait = &l->done;
    co_await l->done.async_wait(tuple_awaitable); // ends by the lookup, the watchdog or a cancellation
    dog.resolve_wait = nullptr;
    if (!l->finished) {
        l->resolver.cancel(); // a lookup not yet started is dropped; a running one is abandoned
        if (dog.fired) co_return errc::connect_timeout;
        co_return asio::error::operation_aborted; // the caller cancelled
    }
    if (dog.fired) co_return errc::connect_timeout;
    if (l->ec) co_return l->ec;
    const auto endpoints = std::move(l->endpoints);

    if (to.tls) {
        std::call_once(system_store_loaded_, [this] {
            if (options_.tls.verify_peer && options_.tls.use_system_store) {
                error_code ignored; // a machine without a system store still has ca_file
                ssl_->set_default_verify_paths(ignored);
            }
        });
        c.tls = std::make_unique<asio::ssl::stream<beast::tcp_stream>>(ex_, *ssl_);
    } else {
        c.tcp = std::make_unique<beast::tcp_stream>(ex_);
    }
    dog.conn = &c;
    auto& tcp = c.lowest();
    auto [cec, ep] = co_await tcp.async_connect(endpoints, tuple_awaitable);
    if (dog.fired) co_return errc::connect_timeout;
    if (cec) co_return map_transport_error(cec, true);
    error_code nd;
    tcp.socket().set_option(asio::ip::tcp::no_delay(true), nd); // best effort
    opened_.fetch_add(1, std::memory_order_relaxed);

    if (c.tls) {
        // RFC 6066 section 3: an IP literal is never a server name.
        error_code not_ip;
        (void)asio::ip::make_address(to.host, not_ip);
        if (not_ip && !SSL_set_tlsext_host_name(c.tls->native_handle(), to.host.c_str()))
            co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        // OpenSSL checks the name (RFC 6125) or the address inside chain verification, so a
        // mismatch has its own verify result, reported as errc::tls_name_mismatch.
        SSL* ssl = c.tls->native_handle();
        if (options_.tls.verify_peer) {
            const bool set = not_ip ? SSL_set1_host(ssl, to.host.c_str()) == 1
                                    : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), to.host.c_str()) == 1;
            if (!set) co_return errc::tls_verification_failed;
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
        if (dog.fired) co_return errc::connect_timeout;
        if (hec) {
            if (options_.tls.verify_peer)
                if (auto v = verify_failure(SSL_get_verify_result(ssl))) co_return v;
            co_return map_transport_error(hec, true);
        }
    }
    co_return error_code{};
}

template <class Reader>
asio::awaitable<exchange_result<typename Reader::result_type>> pool_impl::exchange(connection& c, const wire_request& w,
                                                                                   std::size_t body_limit) {
    const exchange_limits limits{options_.header_limit, body_limit};
    exchange_result<typename Reader::result_type> out;
    if (c.tls) {
        auto op = exchange_on<Reader>(*c.tls, c.buffer, w, limits);
        out = co_await std::move(op);
    } else if (c.mem) {
        auto op = exchange_on<Reader>(*c.mem, c.buffer, w, limits);
        out = co_await std::move(op);
    } else {
        auto op = exchange_on<Reader>(*c.tcp, c.buffer, w, limits);
        out = co_await std::move(op);
    }
    co_return std::move(out);
}

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

asio::awaitable<std::tuple<error_code, response>> pool_impl::send(const origin& to, request& req,
                                                                  const send_options& opts) {
    if (req.find(field::host) == req.end()) req.set(field::host, to.authority());
    if (req.find(field::user_agent) == req.end() && !options_.user_agent.empty())
        req.set(field::user_agent, options_.user_agent);
    req.prepare_payload();

    // The head is checked and serialised once, before any connection is taken: a header that
    // could inject a line fails here and nothing is sent.
    std::string head;
    error_code ec = serialize_request_head(req, head);
    struct wipe_at_exit {
        request& req;
        std::string& head;
        bool on;
        ~wipe_at_exit() {
            if (on) wipe(req, head);
        }
    } wiper{req, head, opts.sensitive};
    if (ec) {
        requests_.fetch_add(1, std::memory_order_relaxed);
        failures_.fetch_add(1, std::memory_order_relaxed);
        co_return std::tuple<error_code, response>{ec, response{}};
    }
    const auto w = wire_of(head, req);
    auto op = send_wire<full_reader>(to, w, opts);
    auto result = co_await std::move(op);
    co_return std::move(result); // the wiper runs after the last byte was written
}

template <class Reader>
asio::awaitable<std::tuple<error_code, typename Reader::result_type>>
pool_impl::send_wire(const origin& to, const wire_request& w, const send_options& opts) {
    using result_type = typename Reader::result_type;
    using outcome = std::tuple<error_code, result_type>;
    requests_.fetch_add(1, std::memory_order_relaxed);
    const auto start = clock::now();
    const auto deadline = start + opts.timeout.value_or(options_.request_timeout);
    const bool idempotent = opts.idempotent.value_or(is_idempotent(w.method));
    const auto body_limit = opts.body_limit.value_or(options_.body_limit);
    error_code ec;

    // The caller's coroutine set the state (see cancel_to_terminal); it may have sent before.
    auto cs = co_await asio::this_coro::cancellation_state;
    bool sending = false;
    origin_pool& p = pool_for(to);
    std::shared_ptr<watchdog> dog;
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto got = co_await acquire(p, attempt > 0, deadline);
        if (got.ec) {
            ec = got.ec;
            break;
        }
        // From here the connection, or the permit to open one, goes back to the pool however this
        // attempt ends, an exception or the frame's destruction included.
        checkout held{*this, p, std::move(got.conn)};
        if (cancelled(cs)) {
            // Cancelled while queued, just as a connection was handed over: send nothing.
            held.give_back(held.conn != nullptr);
            ec = asio::error::operation_aborted;
            break;
        }
        if (!dog) {
            const auto strand = co_await asio::this_coro::executor; // own statement: GCC 12 (design notes)
            dog = std::make_shared<watchdog>(strand);
        }
        if (held.conn) {
            reused_.fetch_add(1, std::memory_order_relaxed);
        } else {
            held.conn = std::make_unique<connection>();
            watchdog::arm(dog, std::min(deadline, clock::now() + options_.connect_timeout));
            {
                watchdog::phase connecting{*dog};
                ec = co_await connect(*held.conn, to, *dog);
            }
            if (!ec && cancelled(cs)) ec = asio::error::operation_aborted;
            if (ec) {
                if (ec == errc::connect_timeout && clock::now() >= deadline) ec = errc::request_timeout;
                break;
            }
        }
        if (!sending) {
            // A cancellation that arrives from here is filtered as once_sent. Emissions run on this
            // strand, so none is lost between the check above and this reset.
            co_await asio::this_coro::reset_cancellation_state(cancel_once_sent, cancel_to_terminal);
            cs = co_await asio::this_coro::cancellation_state;
            sending = true;
        }
        watchdog::arm(dog, deadline);
        exchange_result<result_type> ex;
        bool timed_out = false;
        {
            watchdog::phase exchanging{*dog};
            dog->conn = held.conn.get();
            auto op = exchange<Reader>(*held.conn, w, body_limit);
            ex = co_await std::move(op);
            timed_out = dog->fired;
        }
        if (timed_out) ex.ec = errc::request_timeout;
        if (!ex.ec && cancelled(cs)) ex.ec = asio::error::operation_aborted;
        if (!ex.ec) {
            held.give_back(ex.reusable);
            co_return outcome{error_code{}, std::move(ex.res)};
        }
        held.give_back(false);
        ec = ex.ec;
        // A keep-alive connection the server already dropped fails before any response byte:
        // resend once on a fresh connection, if resending cannot do harm.
        const bool stale_connection = got.reused && !ex.got_bytes && ec != errc::request_timeout &&
                                      ec != asio::error::operation_aborted;
        if (!(stale_connection && idempotent && attempt == 0)) break;
        resends_.fetch_add(1, std::memory_order_relaxed);
    }
    failures_.fetch_add(1, std::memory_order_relaxed);
    co_return outcome{ec, result_type{}};
}

template asio::awaitable<std::tuple<error_code, response>>
pool_impl::send_wire<full_reader>(const origin&, const wire_request&, const send_options&);
template asio::awaitable<std::tuple<error_code, brief_response>>
pool_impl::send_wire<brief_reader>(const origin&, const wire_request&, const send_options&);

void pool_impl::close() {
    if (closed_.exchange(true)) return;
    asio::post(sweep_timer_.get_executor(), [self = shared_from_this()] { self->sweep_timer_.cancel(); });
    std::vector<origin_pool*> pools;
    {
        std::lock_guard lock(origins_mutex_);
        for (auto& [o, p] : origins_) pools.push_back(p.get());
    }
    for (auto* p : pools) {
        std::vector<std::unique_ptr<connection>> idle;
        std::deque<std::shared_ptr<waiter>> waiters;
        {
            std::lock_guard lock(p->mutex);
            idle.swap(p->idle);
            p->open -= idle.size();
            waiters.swap(p->waiters);
            for (auto& w : waiters) {
                w->granted = true;
                w->closed = true;
            }
        }
        for (auto& c : idle) c->close();
        for (auto& w : waiters) asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    }
}

pool_stats pool_impl::stats() const {
    pool_stats s;
    s.requests = requests_.load(std::memory_order_relaxed);
    s.connections_opened = opened_.load(std::memory_order_relaxed);
    s.connections_reused = reused_.load(std::memory_order_relaxed);
    s.resends = resends_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    std::lock_guard lock(origins_mutex_);
    for (auto& [o, p] : origins_) {
        std::lock_guard plock(p->mutex);
        s.open_connections += p->open;
    }
    return s;
}

} // namespace detail

connection_pool::connection_pool(executor_type ex, pool_options options)
    : impl_(std::make_shared<detail::pool_impl>(std::move(ex), std::move(options))) {}

connection_pool::~connection_pool() { impl_->close(); }

void connection_pool::close() { impl_->close(); }
pool_stats connection_pool::stats() const { return impl_->stats(); }
connection_pool::executor_type connection_pool::get_executor() const noexcept { return impl_->executor(); }
const pool_options& connection_pool::options() const noexcept { return impl_->options(); }

namespace {
boost::asio::awaitable<std::tuple<error_code, response>> run_send(std::shared_ptr<detail::pool_impl> impl, origin to,
                                                                 request req, send_options opts) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    co_await boost::asio::this_coro::reset_cancellation_state(boost::asio::enable_total_cancellation(),
                                                              detail::cancel_to_terminal);
    co_return co_await impl->send(to, req, opts);
}
// A prepared request's send: the state is held until the write and read are over.
template <class Reader>
boost::asio::awaitable<std::tuple<error_code, typename Reader::result_type>>
run_prepared(std::shared_ptr<detail::pool_impl> impl, std::shared_ptr<detail::prepared_state> req, send_options opts) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    co_await boost::asio::this_coro::reset_cancellation_state(boost::asio::enable_total_cancellation(),
                                                              detail::cancel_to_terminal);
    using outcome = std::tuple<error_code, typename Reader::result_type>;
    if (!req) co_return outcome{boost::asio::error::invalid_argument, {}}; // an empty prepared_request
    const auto w = req->wire(nullptr);
    auto op = impl->send_wire<Reader>(req->where.origin, w, opts);
    auto result = co_await std::move(op);
    co_return std::move(result);
}
} // namespace

void connection_pool::initiate_prepared(const std::shared_ptr<detail::pool_impl>& impl,
                                        boost::asio::any_completion_handler<send_signature> handler,
                                        const prepared_request& req, send_options opts) {
    tokenflight::detail::spawn_request(
        impl->next_strand(), impl->executor(),
        run_prepared<detail::full_reader>(impl, detail::prepared_access::shared_state(req), opts), std::move(handler));
}

void connection_pool::initiate_brief(const std::shared_ptr<detail::pool_impl>& impl,
                                     boost::asio::any_completion_handler<brief_signature> handler,
                                     const prepared_request& req, send_options opts) {
    tokenflight::detail::spawn_request(
        impl->next_strand(), impl->executor(),
        run_prepared<detail::brief_reader>(impl, detail::prepared_access::shared_state(req), opts), std::move(handler));
}

void connection_pool::initiate_send(const std::shared_ptr<detail::pool_impl>& impl,
                                    boost::asio::any_completion_handler<send_signature> handler, origin to,
                                    request req, send_options opts) {
    tokenflight::detail::spawn_request(impl->next_strand(), impl->executor(), run_send(impl, std::move(to), std::move(req), opts),
                                       std::move(handler));
}

} // namespace tokenflight::http
