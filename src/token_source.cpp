#include <tokenflight/token_source.hpp>

#include "access.hpp"
#include "hook.hpp"
#include "refresh_fsm.hpp"
#include "token_source_impl.hpp"

#include <tokenflight/discovery.hpp>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <random>

namespace tokenflight {
namespace detail {
namespace {

double unit_random() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

[[noreturn]] void throw_config(error_code ec) { throw boost::system::system_error(ec); }

bool uses_assertion(client_auth m) noexcept {
    return m == client_auth::private_key_jwt || m == client_auth::client_secret_jwt;
}

std::uint64_t next_source_id() {
    static std::atomic<std::uint64_t> n{0};
    return ++n; // never reused, unlike an address: a thread's replica cannot match a new source
}

http::pool_options pool_options_for(const token_source_options& o, const credentials& c) {
    http::pool_options p;
    p.max_connections_per_origin = 2; // single flight: one request at a time, plus a spare
    p.request_timeout = o.request_timeout;
    p.connect_timeout = std::min<clock::duration>(o.request_timeout, p.connect_timeout);
    p.body_limit = o.body_limit;
    p.tls = o.tls;
    // Mutual TLS with the token endpoint: the credentials' certificate, which the clients present
    // too, so that a token bound to it is sent on connections that present it.
    if (c.certificate) p.tls.identity = c.certificate;
    p.proxy = o.proxy;
    return p;
}

// Posted to the source's executor, then dispatched to the handler's own executor.
struct posted_completion {
    token_source_impl::handler_type handler;
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

} // namespace

token_source_impl::token_source_impl(asio::any_io_executor ex, credentials creds, token_source_options options)
    : ex_(ex), strand_(asio::make_strand(ex)), creds_(std::move(creds)), options_(std::move(options)),
      cache_(options_.backoff.cooldown), pool_(ex, pool_options_for(options_, creds_)), auth_(creds_.auth),
      id_(next_source_id()) {
    if (options_.dpop.enabled) {
        auto key = options_.dpop.key ? *options_.dpop.key : signing_key::generate_p256();
        if (options_.dpop.alg && !key.supports(*options_.dpop.alg)) throw_config(errc::key_algorithm_mismatch);
        dpop_.emplace(std::move(key), options_.dpop.alg);
    }
    // A token bound to this process's DPoP key or to the client's certificate is no use to
    // another process: such a source shares nothing, loudly.
    if (options_.shared_store && (options_.dpop.enabled || creds_.certificate))
        throw_config(errc::token_not_shareable);
    auto method = effective_client_auth(creds_); // checks what the method needs
    if (!method) throw_config(method.error());
    if (creds_.token_url.empty() && !creds_.issuer.empty()) {
        // The token endpoint comes from the issuer's metadata, fetched by the first refresh;
        // client_auth::automatic is resolved with it.
        auto urls = discovery_urls(creds_.issuer);
        if (!urls) throw_config(urls.error());
        if (http::is_insecure(http::parse_url(creds_.issuer)->origin, creds_.allow_insecure_http))
            throw_config(errc::insecure_transport);
        discover_ = uses_discovery_ = true;
        return;
    }
    creds_.auth = *method;
    auth_.store(*method, std::memory_order_relaxed);
    if (auto ec = set_token_endpoint(creds_.token_url)) throw_config(ec);
}

error_code token_source_impl::set_token_endpoint(std::string url) {
    auto loc = http::parse_url(url);
    if (!loc) return loc.error();
    if (http::is_insecure(loc->origin, creds_.allow_insecure_http)) return errc::insecure_transport;
    location_ = std::move(*loc);
    creds_.token_url = std::move(url);
    audience_ = creds_.assertion.audience.empty() ? creds_.token_url : creds_.assertion.audience;
    return {};
}

// On the strand, before a refresh: the issuer's metadata, from the first well-known URL that
// answers (RFC 8414's, then OpenID Connect's). An issuer mismatch ends the search: the server
// has been asked and named another issuer.
asio::awaitable<error_code> token_source_impl::discover(diagnostics& diag) {
    error_code ec;
    for (const auto& url : *discovery_urls(creds_.issuer)) {
        const auto loc = *http::parse_url(url);
        http::request req{http::verb::get, loc.target, 11};
        req.set(http::field::host, loc.origin.authority());
        req.set(http::field::accept, "application/json");
        http::send_options so;
        so.timeout = options_.request_timeout;
        so.idempotent = true;
        metadata_requests_.fetch_add(1, std::memory_order_relaxed);
        auto [send_ec, res] = co_await pool_.async_send(loc.origin, std::move(req), so, asio::as_tuple(asio::use_awaitable));
        diag.clear();
        if (send_ec) {
            ec = send_ec;
            continue;
        }
        auto m = parse_server_metadata(res.result_int(), res.body(), creds_.issuer, diag);
        if (!m) {
            ec = m.error();
            if (ec == errc::issuer_mismatch) break;
            continue;
        }
        // RFC 8705 section 5: a client with a certificate uses the endpoint aliased for mutual TLS.
        const auto& endpoint = creds_.certificate && !m->mtls_token_endpoint.empty() ? m->mtls_token_endpoint
                                                                                     : m->token_endpoint;
        if (auto bad = set_token_endpoint(endpoint)) co_return bad; // insecure_transport
        // A server that lists its DPoP algorithms and not ours would refuse every proof.
        if (dpop_ && !m->dpop_signing_algs.empty() &&
            std::find(m->dpop_signing_algs.begin(), m->dpop_signing_algs.end(), to_string(dpop_->alg())) ==
                m->dpop_signing_algs.end())
            co_return errc::key_algorithm_mismatch;
        creds_.auth = choose_client_auth(*m, creds_);
        // Still automatic (nothing listed fits): with a key that is private_key_jwt.
        if (auto method = effective_client_auth(creds_)) creds_.auth = *method;
        auth_.store(creds_.auth, std::memory_order_relaxed);
        discover_ = false;
        co_return error_code();
    }
    co_return ec;
}

// Under mutex_: what the cache says, with the token to serve taken while the lock is held. A
// stale token stays visible to try_get's lock-free path until it stops being usable while its
// background refresh runs: serving it is all there is to do meanwhile.
token_source_impl::answer token_source_impl::ask(std::uint64_t newer_than) {
    answer a{cache_.on_request(clock::now(), newer_than), {}};
    if (a.act == token_cache::action::serve || a.act == token_cache::action::serve_and_refresh) a.token = cache_.current();
    if (a.act == token_cache::action::serve_and_refresh) publish(a.token, a.token.usable_until());
    return a;
}

// After the lock: counts what was served and starts the refresh the cache marked as started,
// whether or not anybody waits for it.
void token_source_impl::follow(const answer& a, std::uint64_t newer_than) {
    if (a.token) served_.fetch_add(1, std::memory_order_relaxed);
    if (a.act == token_cache::action::serve_and_refresh) launch_refresh(refresh_cause::stale);
    if (a.act == token_cache::action::wait_and_refresh)
        launch_refresh(newer_than != 0 ? refresh_cause::rejected : refresh_cause::missing);
}

void token_source_impl::start(handler_type handler, diagnostics* diag, std::uint64_t newer_than) {
    std::unique_lock lock(mutex_);
    auto a = ask(newer_than);
    switch (a.act) {
    case token_cache::action::serve:
    case token_cache::action::serve_and_refresh: {
        lock.unlock();
        follow(a, newer_than);
        complete({std::move(handler), diag}, {}, std::move(a.token), nullptr);
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
        follow(a, newer_than);
        return;
    }
    }
}

access_token token_source_impl::try_get_locked(replica& mine) {
    std::unique_lock lock(mutex_);
    auto a = ask(0);
    lock.unlock();
    follow(a, 0);
    const auto& t = a.token;
    if (t && (mine.source != id_ || mine.generation != t.generation()))
        mine = {id_, t.generation(), access_token(std::make_shared<access_token::data>(access::data(t)))};
    return std::move(a.token);
}

// Under mutex_: makes `t` visible to try_get's lock-free path until `until` (default: until it
// goes stale). The generation and the end of the fresh period are published in two atomics,
// seqlock-style (the reader reads the generation on both sides). An empty token hides everything.
void token_source_impl::publish(const access_token& t, std::optional<clock::time_point> until) {
    published_fresh_until_.store(0, std::memory_order_relaxed);
    published_generation_.store(t ? t.generation() : 0, std::memory_order_release);
    const auto end = t ? until.value_or(t.refresh_at()).time_since_epoch().count() : 0;
    published_fresh_until_.store(end, std::memory_order_release);
}

void token_source_impl::report_ok_locked(std::uint64_t g) {
    std::lock_guard lock(mutex_);
    cache_.on_api_success(g);
    ok_generation_.store(cache_.ok_generation(), std::memory_order_relaxed);
    futility_backoff_.store(cache_.in_futility_backoff(), std::memory_order_relaxed);
}

void token_source_impl::report_futile(std::uint64_t g) {
    std::lock_guard lock(mutex_);
    cache_.on_futile_refresh(g, clock::now());
    futility_backoff_.store(cache_.in_futility_backoff(), std::memory_order_relaxed);
}

access_token token_source_impl::newer_than(std::uint64_t g) const {
    std::lock_guard lock(mutex_);
    const auto& t = cache_.current();
    if (t && t.generation() > g && classify(t, clock::now()) != token_state::expired) return t;
    return {};
}

void token_source_impl::close() {
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

token_source_stats token_source_impl::stats() const {
    token_source_stats s;
    s.token_requests = token_requests_.load(std::memory_order_relaxed);
    s.token_failures = token_failures_.load(std::memory_order_relaxed);
    s.proactive_refreshes = proactive_.load(std::memory_order_relaxed);
    s.reactive_refreshes = reactive_.load(std::memory_order_relaxed);
    s.served = served_.load(std::memory_order_relaxed);
    s.waited = waited_.load(std::memory_order_relaxed);
    s.reactive_held_back = held_back_.load(std::memory_order_relaxed);
    s.metadata_requests = metadata_requests_.load(std::memory_order_relaxed);
    s.shared_adopted = shared_adopted_.load(std::memory_order_relaxed);
    s.shared_store_errors = shared_errors_.load(std::memory_order_relaxed);
    return s;
}

diagnostics token_source_impl::last_diagnostics() const {
    std::lock_guard lock(mutex_);
    return cache_.last_diagnostics();
}

// Completes one waiter on its own executor, never inside the caller's stack frame.
void token_source_impl::complete(waiter w, error_code ec, access_token t, const diagnostics* d) {
    if (w.diag) {
        if (ec && d)
            *w.diag = *d;
        else
            w.diag->clear();
    }
    auto handler_ex = asio::get_associated_executor(w.handler, ex_);
    asio::post(ex_, posted_completion{std::move(w.handler), ec, std::move(t), std::move(handler_ex)});
}

void token_source_impl::cancel_waiter(std::uint64_t id) {
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

void token_source_impl::launch_refresh(refresh_cause cause) {
    if (cause == refresh_cause::stale) proactive_.fetch_add(1, std::memory_order_relaxed);
    if (cause == refresh_cause::rejected) reactive_.fetch_add(1, std::memory_order_relaxed);
    // On the strand: the cancellation signal is only ever touched there.
    asio::dispatch(strand_, [self = shared_from_this(), cause] {
        // A refresh that ends by an exception (out of memory) must still complete its waiters
        // and clear the in-flight mark, or every later caller would wait forever.
        asio::co_spawn(self->strand_, self->refresh(self, cause),
                       asio::bind_cancellation_slot(self->refresh_cancel_.slot(), [self, cause](std::exception_ptr ep) {
                           if (ep) self->fail(asio::error::fault, {}, 0, cause);
                       }));
    });
}

void token_source_impl::emit(token_event::kind what, int attempt, refresh_cause cause, error_code ec,
                             const diagnostics* diag, std::optional<clock::duration> retry_in, std::uint64_t generation) {
    if (!options_.on_event) return;
    token_event e;
    e.what = what;
    e.attempt = attempt;
    e.background = cause == refresh_cause::stale;
    e.generation = generation;
    e.error = ec;
    e.diag = diag;
    e.retry_in = retry_in;
    call_hook(options_.on_event, e);
}

// The driver of refresh_fsm: it sends, waits and reports what happened; the policy (fallback,
// backoff, deadline, cancellation) is the state machine's. `self` keeps the source's state alive
// until the refresh ends, even if the source is destroyed.
asio::awaitable<void> token_source_impl::refresh([[maybe_unused]] std::shared_ptr<token_source_impl> self,
                                                 refresh_cause cause) {
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    auto cs = co_await asio::this_coro::cancellation_state;

    if (discover_) {
        diagnostics diag;
        if (auto ec = co_await discover(diag)) co_return fail(ec, std::move(diag), 0, cause);
    }
    // The fleet first: another process's token, or the lease to request one for all.
    claimed shared;
    if (options_.shared_store) {
        shared = co_await claim_shared(cause);
        if (shared.cancelled) co_return fail(asio::error::operation_aborted, {}, 0, cause);
        if (shared.token) {
            shared_adopted_.fetch_add(1, std::memory_order_relaxed);
            succeed(std::move(*shared.token), shared.sent, cause, token_event::kind::token_adopted, shared.lifetime);
            co_return;
        }
    }
    refresh_fsm fsm(options_.backoff, options_.request_timeout, creds_.auth, auth_.load(std::memory_order_relaxed),
                    &unit_random);
    diagnostics diag;
    std::optional<token_response> token;
    clock::time_point sent;
    refresh_event event;
    event.what = refresh_event::kind::start;
    event.now = clock::now();
    event.cancelled = cs.cancelled();
    for (auto step = fsm.resume(event);; step = fsm.resume(event)) {
        if (step.what == refresh_action::kind::done) {
            if (step.ec) {
                // An endpoint that cannot be reached or does not answer as one may have moved:
                // with an issuer, its metadata is fetched again before the next refresh.
                if (uses_discovery_ && step.ec.category() != oauth_category()) discover_ = true;
                fail(step.ec, std::move(diag), step.attempt, cause);
                if (shared.lease) co_await abandon_shared(cause);
                co_return;
            }
            if (fsm.switched_method()) auth_.store(fsm.method(), std::memory_order_relaxed);
            // The waiters first; the fleet after.
            const access_token t = succeed(std::move(*token), sent, cause);
            if (shared.store_helped) co_await publish_shared(t, cause);
            co_return;
        }
        if (step.what == refresh_action::kind::send) {
            secret assertion; // a fresh one per request: a server refuses a jti it has seen
            error_code unsent;
            if (uses_assertion(step.method)) {
                auto made = make_client_assertion(creds_, step.method, audience_,
                                                  std::chrono::system_clock::now(), random_jti());
                if (made) assertion = std::move(*made);
                else unsent = made.error();
            }
            std::string proof;
            if (dpop_ && !unsent) {
                auto made = dpop_->proof("POST", dpop_htu(location_.origin, location_.target),
                                         std::chrono::system_clock::now(), random_jti(), nonces_.get(location_.origin));
                if (made) proof = std::move(*made);
                else unsent = made.error();
            }
            if (unsent) { // nothing sent: the failure is the answer
                event = {};
                event.what = refresh_event::kind::response;
                event.ec = unsent;
                diag.clear();
                diag.attempts = step.attempt;
                event.now = clock::now();
                event.cancelled = cs.cancelled();
                continue;
            }
            auto req = make_token_request(creds_, step.method, location_.origin.authority(), location_.target,
                                          assertion);
            if (!proof.empty()) req.set("DPoP", proof);
            sent = clock::now();
            const auto sent_wall = std::chrono::system_clock::now();
            token_requests_.fetch_add(1, std::memory_order_relaxed);
            emit(token_event::kind::request_sent, step.attempt, cause);
            http::send_options so;
            so.timeout = step.timeout;
            so.idempotent = true; // a token request has no side effect worth protecting
            so.sensitive = true;  // the secret is wiped from the sent buffers
            auto [send_ec, res] =
                co_await pool_.async_send(location_.origin, std::move(req), so, asio::as_tuple(asio::use_awaitable));
            event = {};
            event.what = refresh_event::kind::response;
            diag.clear();
            if (!send_ec) {
                // Every answer may carry the nonce to use next (RFC 9449 section 8).
                if (dpop_)
                    if (auto n = res["DPoP-Nonce"]; !n.empty()) nonces_.update(location_.origin, n);
                // A server may echo the assertion: masked like the secret. The source's redactor
                // is copied only then.
                std::optional<redactor> with_assertion;
                if (!assertion.empty()) with_assertion = redactor_.with(assertion);
                auto parsed = parse_token_response(res.result_int(), res.body(), sent_wall,
                                                   options_.refresh.default_lifetime,
                                                   with_assertion ? *with_assertion : redactor_, diag);
                if (parsed) {
                    token = std::move(*parsed);
                } else {
                    event.ec = parsed.error();
                    if (auto ra = res[http::field::retry_after]; !ra.empty())
                        diag.retry_after = parse_retry_after(ra, std::chrono::system_clock::now());
                    event.retry_after = diag.retry_after;
                }
            } else {
                event.ec = send_ec;
            }
            diag.attempts = step.attempt;
        } else { // wait
            emit(token_event::kind::attempt_failed, step.attempt, cause, step.ec, &diag, step.delay);
            asio::steady_timer timer(strand_, step.delay);
            auto [timer_ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            event = {};
            event.what = refresh_event::kind::timer;
            event.ec = timer_ec;
        }
        event.now = clock::now();
        event.cancelled = cs.cancelled();
    }
}

// The shared store's answer: a token response the cache takes like any other (with when it was
// requested and its whole life, on this process's clock), the lease, or nothing (cancelled, or
// the store could not help: the source requests its own).
asio::awaitable<token_source_impl::claimed> token_source_impl::claim_shared(refresh_cause cause) {
    access_token replacing;
    {
        std::lock_guard lock(mutex_);
        replacing = cache_.current();
    }
    // The initiations are named: GCC 12 destroys a lambda temporary inside a co_await
    // expression twice (here: one reference to the store too few).
    auto token = asio::as_tuple(asio::use_awaitable);
    auto init = [store = options_.shared_store, replacing](auto handler) {
        store->async_claim(replacing, std::move(handler));
    };
    auto [ec, claim] = co_await asio::async_initiate<decltype(token), void(error_code, shared_claim)>(init, token);
    claimed out;
    if (ec == asio::error::operation_aborted) { // close(): not the store's failure
        out.cancelled = true;
        co_return out;
    }
    if (ec) {
        shared_errors_.fetch_add(1, std::memory_order_relaxed);
        emit(token_event::kind::shared_store_failed, 0, cause, ec);
        co_return out;
    }
    out.store_helped = true;
    out.lease = claim.lease;
    if (claim.token) {
        // On this process's clock, to the nanosecond (a 1 s token read 10 ms after its request
        // has 990 ms left, not 0 s), over its whole life when the store knows when it began: the
        // refresh point and the expiry margin are then the requester's, whenever it is taken.
        const auto system_now = std::chrono::system_clock::now();
        const auto now = clock::now();
        const auto& t = *claim.token;
        const auto left = std::chrono::duration_cast<clock::duration>(t.expires_at - system_now);
        const auto lifetime = t.issued_at.time_since_epoch().count() > 0 && t.issued_at < t.expires_at
                                  ? std::chrono::duration_cast<clock::duration>(t.expires_at - t.issued_at)
                                  : left;
        const auto sent = now + left - lifetime;
        const auto times = compute_token_times(sent, lifetime, std::nullopt, options_.refresh);
        // One that expired on the way, or is past its expiry margin, is not taken: this source
        // then requests its own (and shares it).
        if (left > clock::duration::zero() && times.usable_until > now && !t.value.empty()) {
            token_response r;
            r.access_token = std::string(t.value.reveal());
            r.token_type = t.type.empty() ? "Bearer" : t.type;
            r.scope = t.scope;
            r.lifetime = std::chrono::duration_cast<std::chrono::seconds>(lifetime);
            out.token = std::move(r);
            out.sent = sent;
            out.lifetime = lifetime;
        }
    }
    co_return out;
}

asio::awaitable<void> token_source_impl::publish_shared(const access_token& t, refresh_cause cause) {
    shared_token s;
    s.value = secret(t.value());
    s.type = std::string(t.type());
    s.scope = std::string(t.scope());
    const auto system_now = std::chrono::system_clock::now();
    const auto now = clock::now();
    s.expires_at = system_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(t.expires_at() - now);
    s.issued_at = system_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(now - t.issued_at());
    auto token = asio::as_tuple(asio::use_awaitable);
    auto init = [store = options_.shared_store, &s](auto handler) { store->async_publish(std::move(s), std::move(handler)); };
    auto [ec] = co_await asio::async_initiate<decltype(token), void(error_code)>(init, token);
    if (ec) {
        shared_errors_.fetch_add(1, std::memory_order_relaxed);
        emit(token_event::kind::shared_store_failed, 0, cause, ec);
    }
}

asio::awaitable<void> token_source_impl::abandon_shared(refresh_cause cause) {
    auto token = asio::as_tuple(asio::use_awaitable);
    auto init = [store = options_.shared_store](auto handler) { store->async_abandon(std::move(handler)); };
    auto [ec] = co_await asio::async_initiate<decltype(token), void(error_code)>(init, token);
    if (ec) {
        shared_errors_.fetch_add(1, std::memory_order_relaxed);
        emit(token_event::kind::shared_store_failed, 0, cause, ec);
    }
}

access_token token_source_impl::succeed(token_response r, clock::time_point sent, refresh_cause cause,
                                        token_event::kind what, std::optional<clock::duration> lifetime) {
    const auto times = compute_token_times(sent, lifetime.value_or(r.lifetime), r.refresh_in, options_.refresh);
    auto data = token_data(std::move(r.access_token), std::move(r.token_type),
                           r.scope.empty() ? creds_.scope : std::move(r.scope), sent, times);
    std::map<std::uint64_t, waiter> done;
    access_token t;
    {
        std::lock_guard lock(mutex_);
        t = cache_.on_refresh_succeeded(std::move(data));
        publish(t);
        done.swap(waiters_);
    }
    served_.fetch_add(done.size(), std::memory_order_relaxed);
    for (auto& [id, w] : done) complete(std::move(w), {}, t, nullptr);
    emit(what, 0, cause, {}, nullptr, std::nullopt, t.generation());
    return t;
}

void token_source_impl::fail(error_code ec, diagnostics diag, int attempts, refresh_cause cause) {
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
    emit(token_event::kind::refresh_failed, attempts, cause, ec, &diag);
}

} // namespace detail

token_source::token_source(executor_type ex, credentials creds, token_source_options options)
    : impl_(std::make_shared<detail::token_source_impl>(std::move(ex), std::move(creds), std::move(options))) {}

token_source::~token_source() { impl_->close(); }

void token_source::start(const std::shared_ptr<detail::token_source_impl>& impl, handler_type handler,
                         diagnostics* diag, std::uint64_t newer_than) {
    impl->start(std::move(handler), diag, newer_than);
}

access_token token_source::try_get_token() { return impl_->try_get(); }
void token_source::close() { impl_->close(); }
token_source_stats token_source::stats() const { return impl_->stats(); }
token_source::executor_type token_source::get_executor() const noexcept { return impl_->executor(); }
diagnostics token_source::last_diagnostics() const { return impl_->last_diagnostics(); }

} // namespace tokenflight
