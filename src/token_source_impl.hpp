// Private to tokenflight: the token source's implementation, shared with the client so that
// its request coroutines can wait on the source without going through the public wrapper.
#ifndef TOKENFLIGHT_SRC_TOKEN_SOURCE_IMPL_HPP
#define TOKENFLIGHT_SRC_TOKEN_SOURCE_IMPL_HPP

#include <tokenflight/token_source.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <map>
#include <mutex>
#include <random>

namespace tokenflight {

namespace asio = boost::asio;

namespace detail {

inline namespace impl_helpers {
inline double unit_random() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

[[noreturn]] inline void throw_config(errc e) { throw boost::system::system_error(make_error_code(e)); }
} // namespace

class token_source_impl : public std::enable_shared_from_this<token_source_impl> {
public:
    using handler_type = asio::any_completion_handler<void(error_code, access_token)>;

    token_source_impl(asio::any_io_executor ex, credentials creds, token_source_options options)
        : ex_(ex), strand_(asio::make_strand(ex)), creds_(std::move(creds)), options_(std::move(options)),
          cache_(options_.backoff.cooldown), pool_(ex, pool_options_for(options_)),
          auth_(creds_.auth == client_auth::post ? client_auth::post : client_auth::basic) {
        auto loc = http::parse_url(creds_.token_url);
        if (!loc) throw boost::system::system_error(loc.error());
        location_ = std::move(*loc);
        if (creds_.client_id.empty() || creds_.client_secret.empty()) throw_config(errc::missing_credentials);
        if (!location_.origin.tls && !http::is_loopback_host(location_.origin.host) && !creds_.allow_insecure_http)
            throw_config(errc::insecure_transport);
    }

    void start(handler_type handler, diagnostics* diag, std::optional<std::uint64_t> after) {
        std::unique_lock lock(mutex_);
        const auto act = cache_.on_request(clock::now(), after);
        switch (act) {
        case token_cache::action::serve:
        case token_cache::action::serve_and_refresh: {
            access_token t = cache_.current();
            if (act == token_cache::action::serve_and_refresh) publish(t, t.usable_until());
            lock.unlock();
            served_.fetch_add(1, std::memory_order_relaxed);
            if (act == token_cache::action::serve_and_refresh) launch_refresh(true, false);
            complete({std::move(handler), diag}, {}, std::move(t), nullptr);
            return;
        }
        case token_cache::action::fail: {
            error_code ec = cache_.closed() ? error_code(errc::closed) : cache_.last_error();
            diagnostics d = cache_.last_diagnostics();
            lock.unlock();
            complete({std::move(handler), diag}, ec, {}, &d);
            return;
        }
        case token_cache::action::held_back: {
            lock.unlock();
            held_back_.fetch_add(1, std::memory_order_relaxed);
            complete({std::move(handler), diag}, errc::refresh_backoff, {}, nullptr);
            return;
        }
        case token_cache::action::wait:
        case token_cache::action::wait_and_refresh: {
            const auto id = next_waiter_++;
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) {
                slot.assign([weak = weak_from_this(), id](asio::cancellation_type) {
                    if (auto self = weak.lock()) self->cancel_waiter(id);
                });
            }
            waiters_.emplace(id, waiter{std::move(handler), diag});
            lock.unlock();
            waited_.fetch_add(1, std::memory_order_relaxed);
            if (act == token_cache::action::wait_and_refresh) launch_refresh(false, after.has_value());
            return;
        }
        }
    }

    // The hot path. A fresh token is read without the mutex: the generation and the end of its
    // fresh period are published in two atomics (seqlock-style, generation read on both sides),
    // and each thread hands out its own replica of the token, so that copies made on different
    // threads never share a reference count. Stale, expired or missing tokens take the locked path.
    access_token try_get() {
        struct replica {
            std::uint64_t source = 0, generation = 0;
            access_token token;
        };
        thread_local replica mine;
        const auto now = clock::now().time_since_epoch().count();
        const auto g1 = published_generation_.load(std::memory_order_acquire);
        const auto fresh_until = published_fresh_until_.load(std::memory_order_acquire);
        const auto g2 = published_generation_.load(std::memory_order_acquire);
        if (g1 != 0 && g1 == g2 && now < fresh_until && mine.source == id_ && mine.generation == g1) return mine.token;

        std::unique_lock lock(mutex_);
        const auto act = cache_.on_request(clock::now(), std::nullopt);
        access_token t;
        if (act == token_cache::action::serve || act == token_cache::action::serve_and_refresh) t = cache_.current();
        if (act == token_cache::action::serve_and_refresh) publish(t, t.usable_until());
        lock.unlock();
        if (t) served_.fetch_add(1, std::memory_order_relaxed);
        // The cache marked a refresh as started: it must really start, even though nobody waits.
        if (act == token_cache::action::serve_and_refresh) launch_refresh(true, false);
        if (act == token_cache::action::wait_and_refresh) launch_refresh(false, false);
        if (t && (mine.source != id_ || mine.generation != t.generation())) {
            auto copy = std::make_shared<access_token::data>();
            copy->value = t.value();
            copy->type = t.type();
            copy->scope = t.scope();
            copy->issued_at = t.issued_at();
            copy->refresh_at = t.refresh_at();
            copy->usable_until = t.usable_until();
            copy->expires_at = t.expires_at();
            copy->generation = t.generation();
            mine = {id_, t.generation(), access_token(std::move(copy))};
        }
        return t;
    }

    // Under mutex_: makes `t` visible to try_get's lock-free path until `until` (default: until it
    // goes stale; while a background refresh is in flight, until it stops being usable, because
    // serving it is then all there is to do). An empty token hides everything.
    void publish(const access_token& t, std::optional<clock::time_point> until = std::nullopt) {
        published_fresh_until_.store(0, std::memory_order_relaxed);
        published_generation_.store(t ? t.generation() : 0, std::memory_order_release);
        const auto end = t ? until.value_or(t.refresh_at()).time_since_epoch().count() : 0;
        published_fresh_until_.store(end, std::memory_order_release);
    }

    // --- what the client learns from API responses (see token_cache::on_futile_refresh) ---

    /// A 2xx for a request sent with generation `g`. Per response, so the common case (a known
    /// good generation, no backoff) is two relaxed loads and no lock.
    void report_ok(std::uint64_t g) {
        if (g <= ok_generation_.load(std::memory_order_relaxed) && !futility_backoff_.load(std::memory_order_relaxed))
            return;
        std::lock_guard lock(mutex_);
        cache_.on_api_success(g);
        ok_generation_.store(cache_.ok_generation(), std::memory_order_relaxed);
        futility_backoff_.store(cache_.in_futility_backoff(), std::memory_order_relaxed);
    }

    /// A resend with generation `g` got 401 again.
    void report_futile(std::uint64_t g) {
        std::lock_guard lock(mutex_);
        cache_.on_futile_refresh(g, clock::now());
        futility_backoff_.store(cache_.in_futility_backoff(), std::memory_order_relaxed);
    }

    /// The cached token if it is usable and newer than `g`, else an empty token; never refreshes.
    access_token newer_than(std::uint64_t g) const {
        std::lock_guard lock(mutex_);
        const auto& t = cache_.current();
        if (t && t.generation() > g && classify(t, clock::now()) != token_state::expired) return t;
        return {};
    }

    void close() {
        std::map<std::uint64_t, waiter> aborted;
        {
            std::lock_guard lock(mutex_);
            if (cache_.closed()) return;
            cache_.close();
            publish({});
            aborted.swap(waiters_);
        }
        for (auto& [id, w] : aborted) complete(std::move(w), asio::error::operation_aborted, {}, nullptr);
        asio::dispatch(strand_, [self = shared_from_this()] { self->refresh_cancel_.emit(asio::cancellation_type::all); });
        pool_.close();
    }

    token_source_stats stats() const {
        token_source_stats s;
        s.token_requests = token_requests_.load(std::memory_order_relaxed);
        s.token_failures = token_failures_.load(std::memory_order_relaxed);
        s.proactive_refreshes = proactive_.load(std::memory_order_relaxed);
        s.reactive_refreshes = reactive_.load(std::memory_order_relaxed);
        s.served = served_.load(std::memory_order_relaxed);
        s.waited = waited_.load(std::memory_order_relaxed);
        s.reactive_held_back = held_back_.load(std::memory_order_relaxed);
        return s;
    }

    diagnostics last_diagnostics() const {
        std::lock_guard lock(mutex_);
        return cache_.last_diagnostics();
    }

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    /// The pool token requests go through (the end-to-end fuzz target sets its transport).
    http::connection_pool& pool() noexcept { return pool_; }

private:
    struct waiter {
        handler_type handler;
        diagnostics* diag = nullptr;
    };

    static http::pool_options pool_options_for(const token_source_options& o) {
        http::pool_options p;
        p.max_connections_per_origin = 2; // single flight: one request at a time, plus a spare
        p.request_timeout = o.request_timeout;
        p.connect_timeout = std::min<clock::duration>(o.request_timeout, p.connect_timeout);
        p.body_limit = o.body_limit;
        p.tls = o.tls;
        return p;
    }

    // Completes one waiter on its own executor, never inside the caller's stack frame.
    void complete(waiter w, error_code ec, access_token t, const diagnostics* d) {
        if (w.diag) {
            if (ec && d)
                *w.diag = *d;
            else
                w.diag->clear();
        }
        auto hex = asio::get_associated_executor(w.handler, ex_);
        asio::post(ex_, posted_completion{std::move(w.handler), ec, std::move(t), std::move(hex)});
    }

    // Posted to the source's executor, then dispatched to the handler's own executor.
    struct posted_completion {
        handler_type handler;
        error_code ec;
        access_token token;
        asio::any_completion_executor ex;

        using executor_type = asio::any_completion_executor;
        executor_type get_executor() const noexcept { return ex; }

        void operator()() {
            // Cleared here, on the handler's executor: never while a cancellation is being emitted.
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) slot.clear();
            std::move(handler)(ec, std::move(token));
        }
    };

    void cancel_waiter(std::uint64_t id) {
        // Extracted, never assigned: assigning an any_completion_handler recurses forever in Boost 1.81.
        decltype(waiters_)::node_type node;
        {
            std::lock_guard lock(mutex_);
            auto it = waiters_.find(id);
            if (it == waiters_.end()) return; // already completed
            node = waiters_.extract(it);
        }
        complete(std::move(node.mapped()), asio::error::operation_aborted, {}, nullptr);
    }

    void launch_refresh(bool background, bool reactive) {
        if (background) proactive_.fetch_add(1, std::memory_order_relaxed);
        if (reactive) reactive_.fetch_add(1, std::memory_order_relaxed);
        // On the strand: the cancellation signal is only ever touched there.
        asio::dispatch(strand_, [self = shared_from_this(), background] {
            // A refresh that ends by an exception (out of memory) must still complete its waiters
            // and clear the in-flight mark, or every later caller would wait forever.
            asio::co_spawn(self->strand_, self->refresh(self, background),
                           asio::bind_cancellation_slot(self->refresh_cancel_.slot(),
                                                        [self, background](std::exception_ptr ep) {
                                                            if (ep) self->fail(asio::error::fault, {}, 0, background);
                                                        }));
        });
    }

    void emit(token_event::kind what, int attempt, bool background, error_code ec = {},
              const diagnostics* diag = nullptr, std::optional<clock::duration> retry_in = std::nullopt,
              std::uint64_t generation = 0) {
        if (!options_.on_event) return;
        token_event e;
        e.what = what;
        e.attempt = attempt;
        e.background = background;
        e.generation = generation;
        e.error = ec;
        e.diag = diag;
        e.retry_in = retry_in;
        try {
            options_.on_event(e);
        } catch (...) {
            // A throwing hook (a logger out of disk, say) must not kill the refresh.
        }
    }

    // `self` keeps the source's state alive until the refresh ends, even if the source is destroyed.
    asio::awaitable<void> refresh([[maybe_unused]] std::shared_ptr<token_source_impl> self, bool background) {
        co_await asio::this_coro::throw_if_cancelled(false);
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        auto cs = co_await asio::this_coro::cancellation_state;
        const auto is_cancelled = [&] { return cs.cancelled() != asio::cancellation_type::none; };

        const auto deadline = clock::now() + options_.backoff.deadline;
        client_auth method = auth_.load(std::memory_order_relaxed);
        bool switched_auth = false;
        diagnostics diag;
        error_code ec;
        int attempt = 0, failures = 0;
        for (;;) {
            ++attempt;
            if (is_cancelled()) {
                ec = asio::error::operation_aborted;
                break;
            }
            auto req = make_token_request(creds_, method, location_.origin.authority(), location_.target);
            const auto sent = clock::now();
            const auto sent_wall = std::chrono::system_clock::now();
            token_requests_.fetch_add(1, std::memory_order_relaxed);
            emit(token_event::kind::request_sent, attempt, background);

            http::send_options so;
            so.timeout = std::max<clock::duration>(std::chrono::milliseconds(1),
                                                   std::min(options_.request_timeout, deadline - sent));
            so.idempotent = true; // a token request has no side effect worth protecting
            so.sensitive = true;  // the secret is wiped from the sent buffers
            auto [sec, res] = co_await pool_.async_send(location_.origin, std::move(req), so,
                                                        asio::as_tuple(asio::use_awaitable));
            diag.clear();
            if (!sec) {
                auto parsed = parse_token_response(res.result_int(), res.body(), sent_wall,
                                                   options_.refresh.default_lifetime, redactor_, diag);
                if (parsed) {
                    if (switched_auth) auth_.store(method, std::memory_order_relaxed);
                    succeed(std::move(*parsed), sent, background);
                    co_return;
                }
                ec = parsed.error();
                if (auto ra = res[http::field::retry_after]; !ra.empty())
                    diag.retry_after = parse_retry_after(ra, std::chrono::system_clock::now());
            } else {
                ec = sec;
            }
            diag.attempts = attempt;
            if (ec == errc::invalid_client && creds_.auth == client_auth::automatic && method == client_auth::basic &&
                !switched_auth) {
                method = client_auth::post; // RFC 6749 allows either; some servers only take one
                switched_auth = true;
                continue;
            }
            ++failures;
            if (!is_transient(ec) || failures >= options_.backoff.max_attempts || is_cancelled()) break;
            const auto delay = options_.backoff.delay(failures, unit_random(), diag.retry_after);
            if (clock::now() + delay >= deadline) break;
            emit(token_event::kind::attempt_failed, attempt, background, ec, &diag, delay);
            asio::steady_timer timer(strand_, delay);
            auto [tec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (tec) {
                ec = asio::error::operation_aborted;
                break;
            }
        }
        fail(ec, std::move(diag), attempt, background);
    }

    void succeed(token_response r, clock::time_point sent, bool background) {
        const auto times = compute_token_times(sent, r.lifetime, r.refresh_in, options_.refresh);
        std::map<std::uint64_t, waiter> done;
        access_token t;
        {
            std::lock_guard lock(mutex_);
            auto d = std::make_shared<access_token::data>();
            d->value = std::move(r.access_token);
            d->type = std::move(r.token_type);
            d->scope = r.scope.empty() ? creds_.scope : std::move(r.scope);
            d->issued_at = sent;
            d->refresh_at = times.refresh_at;
            d->usable_until = times.usable_until;
            d->expires_at = times.expires_at;
            d->generation = cache_.next_generation();
            t = access_token(std::move(d));
            cache_.on_refresh_succeeded(t);
            publish(t);
            done.swap(waiters_);
        }
        served_.fetch_add(done.size(), std::memory_order_relaxed);
        for (auto& [id, w] : done) complete(std::move(w), {}, t, nullptr);
        emit(token_event::kind::token_received, 0, background, {}, nullptr, std::nullopt, t.generation());
    }

    void fail(error_code ec, diagnostics diag, int attempts, bool background) {
        diag.attempts = attempts;
        std::map<std::uint64_t, waiter> done;
        {
            std::lock_guard lock(mutex_);
            cache_.on_refresh_failed(ec, diag, clock::now());
            publish(cache_.closed() ? access_token{} : cache_.current()); // stale again: the locked path decides
            done.swap(waiters_);
        }
        token_failures_.fetch_add(1, std::memory_order_relaxed);
        for (auto& [id, w] : done) complete(std::move(w), ec, {}, &diag);
        emit(token_event::kind::refresh_failed, attempts, background, ec, &diag);
    }

    asio::any_io_executor ex_;
    asio::strand<asio::any_io_executor> strand_; // the refresh coroutine and its cancellation signal
    credentials creds_;
    token_source_options options_;
    http::location location_;
    redactor redactor_{creds_.client_secret, creds_.client_id}; // after creds_: built from it

    mutable std::mutex mutex_; // guards cache_, waiters_, next_waiter_; never held across I/O
    token_cache cache_;
    std::map<std::uint64_t, waiter> waiters_; // ordered: completed in arrival order
    std::uint64_t next_waiter_ = 0;

    http::connection_pool pool_;
    asio::cancellation_signal refresh_cancel_;
    std::atomic<client_auth> auth_;

    // try_get's lock-free view of the cached token; see publish().
    std::atomic<std::uint64_t> published_generation_{0};
    std::atomic<clock::rep> published_fresh_until_{0};
public:
    /// Unique per source in the process (generations count from 1 in every source).
    std::uint64_t id() const noexcept { return id_; }

private:
    const std::uint64_t id_ = next_source_id();
    static std::uint64_t next_source_id() {
        static std::atomic<std::uint64_t> n{0};
        return ++n; // never reused, unlike an address: a thread's replica cannot match a new source
    }

    std::atomic<std::uint64_t> token_requests_{0}, token_failures_{0}, proactive_{0}, reactive_{0}, served_{0},
        waited_{0}, held_back_{0};
    std::atomic<std::uint64_t> ok_generation_{0}; // mirrors of the cache's, for report_ok's fast path
    std::atomic<bool> futility_backoff_{false};
};

} // namespace detail
} // namespace tokenflight

#endif
