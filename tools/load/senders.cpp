#include "senders.hpp"

#include "fleet_run.hpp"

#include <tokenflight/http/prepared_request.hpp>
#include <tokenflight/http/url.hpp>
#include <tokenflight/redis_token_store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <future>
#include <optional>
#include <utility>

namespace tokenflight::load {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::uint64_t senders::token_fetches() const {
    std::uint64_t n = 0;
    for (const auto* s : sources) n += s->stats().token_requests;
    return n;
}

std::uint64_t senders::resends_after_401() const {
    std::uint64_t resends = 0;
    for (const auto& l : loops)
        for (const auto& c : l.clients) resends += c->stats().resends_after_401;
    return resends;
}

run_counters senders::sample(const tally& t) const {
    run_counters c;
    c.at = clock::now();
    c.requests = t.done.load(std::memory_order_relaxed);
    c.errors = t.failed.load(std::memory_order_relaxed);
    for (std::size_t s = 0; s < t.status.size(); ++s)
        c.status_class[status_class_of(static_cast<unsigned>(s))] += t.status[s].load(std::memory_order_relaxed);
    c.token_fetches = token_fetches();
    // Every resend answers a 401 the caller never sees; the 401s returned are in the status
    // counts. (A DPoP nonce's 401 is the clients' dpop_nonce_resends: a nonce rotation, not a
    // rejected token.)
    c.resends = resends_after_401();
    c.unauthorized = c.resends;
    for (const auto& l : loops) c.connections += l.pool->stats().open_connections;
    c.unauthorized += t.status[401].load(std::memory_order_relaxed);
    c.latency = t.latency.snapshot();
    return c;
}

namespace {

// The workers' completion token: awaited, as a tuple, with the loop's io_context executor bound
// to the handler. The coroutine's own executor is an any_io_executor, which the library's
// type-erased handler would convert to an any_completion_executor on every request (a heap
// allocation); the io_context's executor fits in it as it is.
auto completion_token(event_loops::executor_type ex) {
    return asio::bind_executor(ex, asio::as_tuple(asio::use_awaitable));
}

http::tls_options tls_for(const config& cfg) {
    http::tls_options tls;
    tls.verify_peer = !cfg.insecure;
    tls.ca_file = cfg.cacert;
    return tls;
}

// --proxy URL: that proxy for every origin; --proxy none: direct; neither: the environment.
http::proxy_options proxy_for(const config& cfg) {
    http::proxy_options p;
    if (cfg.proxy) {
        p.from = *cfg.proxy == "none" ? http::proxy_options::source::none : http::proxy_options::source::fixed;
        if (*cfg.proxy != "none") p.url = *cfg.proxy;
    }
    return p;
}

// Loop k's pool: --max-connections is for the whole run, so each loop gets its share, as with -c.
http::pool_options pool_options_for(const config& cfg, int k, int loop_count) {
    http::pool_options o;
    o.request_timeout = cfg.timeout;
    o.queue_timeout = cfg.timeout;
    o.tls = tls_for(cfg);
    o.proxy = proxy_for(cfg);
    o.version = cfg.http_version;
    if (cfg.http_version == http::http_version::http1) {
        const int max_connections = cfg.max_connections.value_or(cfg.concurrency);
        o.max_connections_per_origin = static_cast<std::size_t>(share(max_connections, k, loop_count));
    } else {
        // Streams, not connections, carry -c: each loop's connections (one by default) take its
        // share of it, up to the server's stream limit; an origin that turns out to speak
        // HTTP/1.1 gets a connection per request in flight, as without --http2.
        o.http2.max_connections = static_cast<std::size_t>(share(cfg.max_connections.value_or(loop_count), k, loop_count));
        o.http2.max_concurrent_streams = static_cast<std::uint32_t>(std::max(256, share(cfg.concurrency, k, loop_count)));
        o.max_connections_per_origin = static_cast<std::size_t>(share(cfg.concurrency, k, loop_count));
    }
    return o;
}

// The first token, or why there is none. The diagnostics and the outcome live in state the
// completion handler shares: if the wait gives up, the operation still completes later and
// writes into them.
std::optional<std::string> first_token_failure(token_source& source, const config& cfg,
                                               const std::string& token_url) {
    struct first_token {
        diagnostics diag;
        std::promise<error_code> done;
    };
    auto first = std::make_shared<first_token>();
    auto outcome = first->done.get_future();
    source.async_get_token(
        first->diag, [first](error_code ec, const access_token&) { first->done.set_value(ec); });
    if (outcome.wait_for(cfg.timeout + 2s) != std::future_status::ready)
        return "no first token from " + token_url + ": no answer within --timeout";
    if (const auto ec = outcome.get()) {
        std::string detail = first->diag.to_string();
        return "no first token from " + token_url + ": " + ec.message() +
               (detail.empty() ? "" : " (" + detail + ")");
    }
    return std::nullopt;
}

// A target's headers: its own, then every -H.
std::vector<std::pair<std::string, std::string>> headers_of(const config& cfg, const target& t) {
    auto h = t.headers;
    h.insert(h.end(), cfg.headers.begin(), cfg.headers.end());
    return h;
}

std::string cannot_prepare(const target& t, const error_code& ec) {
    return "cannot prepare the request " + t.name() + ": " + ec.message();
}

// --client-cert without a token: the certificate is the API's only credential.
std::variant<senders, setup_error> bare_pools(const config& cfg, const http::client_identity& certificate,
                                              event_loops& loops) {
    senders s;
    s.loops.resize(static_cast<std::size_t>(loops.size()));
    for (int k = 0; k < loops.size(); ++k) {
        auto& l = s.loops[static_cast<std::size_t>(k)];
        auto po = pool_options_for(cfg, k, loops.size());
        po.tls.identity = certificate;
        l.pool = std::make_unique<http::connection_pool>(loops.executor(k), po);
        // Prepared once per loop: every send writes the same head and body, nothing serialised
        // again.
        std::vector<http::prepared_request> requests;
        for (const auto& t : cfg.targets) {
            auto prepared = http::make_prepared_request(t.method, t.url, headers_of(cfg, t), t.body, po.user_agent);
            if (!prepared) return setup_error{cannot_prepare(t, prepared.error())};
            requests.push_back(std::move(*prepared));
        }
        l.send = [pool = l.pool.get(), reqs = std::move(requests), ex = loops.executor(k)](std::size_t t) {
            return pool->async_send_brief(reqs[t], http::send_options{}, completion_token(ex));
        };
    }
    return s;
}

std::variant<senders, setup_error> clients(const config& cfg, credentials creds,
                                           event_loops& loops) {
    senders s;
    token_source_options so;
    so.request_timeout = cfg.timeout;
    so.backoff.deadline = cfg.timeout;
    so.tls = tls_for(cfg);
    so.proxy = proxy_for(cfg);
    so.dpop.enabled = cfg.dpop;
    so.on_event = [story = s.story](const token_event& e) {
        if (e.what == token_event::kind::request_sent)
            story->fetch_started(e.background);
        else if (e.what == token_event::kind::token_received)
            story->fetch_ended(true);
        else if (e.what == token_event::kind::attempt_failed || e.what == token_event::kind::refresh_failed)
            story->fetch_ended(false); // the attempt failed (it may be retried: a new fetch)
        // token_adopted, shared_store_failed (--redis): no request of this worker's
    };
    const std::string token_url = http::redact_url(creds.token_url.empty() ? creds.issuer : creds.token_url);
    const std::string default_scope = creds.scope;
    // One token source per scope the targets ask for (most runs: one, for --scope), from one
    // registry; targets[t] uses source scope_of[t].
    std::vector<std::size_t> scope_of;
    // --redis: each source's store, from its own credentials (its scope names its record).
    token_registry::store_factory stores;
    if (!cfg.redis_url.empty()) {
        redis_store_options ro;
        ro.url = cfg.redis_url;
        ro.timeout = cfg.redis_timeout;
        ro.lease = cfg.redis_lease.value_or(cfg.timeout + 2s);
        ro.key_material = cfg.redis_key;
        ro.tls = redis_tls(cfg);
        stores = [ex = loops.executor(0), ro](const credentials& c) { return make_redis_token_store(ex, c, ro); };
        try {
            (void)stores(creds); // the URL and the key material, checked before the first token
        } catch (const boost::system::system_error& e) {
            return setup_error{"cannot use --redis: " + e.code().message() +
                               (e.code() == errc::missing_credentials ? " (the record key needs 16 bytes: a longer "
                                                                        "client secret, or --redis-key-file)"
                                                                      : " (URL not shown)")};
        }
    }
    try {
        s.registry = std::make_unique<token_registry>(loops.executor(0), std::move(creds), so, std::move(stores));
        for (const auto& t : cfg.targets) {
            token_source& source = s.registry->source(t.scope.value_or(default_scope));
            const auto known = std::find(s.sources.begin(), s.sources.end(), &source);
            scope_of.push_back(static_cast<std::size_t>(known - s.sources.begin()));
            if (known == s.sources.end()) s.sources.push_back(&source);
        }
    } catch (const boost::system::system_error& e) {
        return setup_error{"cannot use token URL '" + token_url + "': " + e.code().message()};
    }
    for (auto* source : s.sources)
        if (auto failure = first_token_failure(*source, cfg, token_url)) return setup_error{std::move(*failure)};

    s.loops.resize(static_cast<std::size_t>(loops.size()));
    for (int k = 0; k < loops.size(); ++k) {
        auto& l = s.loops[static_cast<std::size_t>(k)];
        client_options co;
        co.auth_scheme = cfg.auth_scheme;
        // The 401s behind resends; the workers record the 401s returned.
        co.on_event = [story = s.story](const client_event& e) {
            if (e.what == client_event::kind::resend_after_401) story->unauthorized();
        };
        l.pool = std::make_unique<http::connection_pool>(loops.executor(k), pool_options_for(cfg, k, loops.size()));
        for (auto* source : s.sources) l.clients.push_back(std::make_unique<client>(*source, *l.pool, co));
        // Prepared once per loop: the Authorization line is rebuilt only when the token changes.
        std::vector<std::pair<client*, http::prepared_request>> requests;
        for (std::size_t t = 0; t < cfg.targets.size(); ++t) {
            const auto& target = cfg.targets[t];
            client* c = l.clients[scope_of[t]].get();
            auto prepared = c->prepare(target.method, target.url, headers_of(cfg, target), target.body);
            if (!prepared) return setup_error{cannot_prepare(target, prepared.error())};
            requests.emplace_back(c, std::move(*prepared));
        }
        l.send = [reqs = std::move(requests), ex = loops.executor(k)](std::size_t t) {
            return reqs[t].first->async_send_brief(reqs[t].second, completion_token(ex));
        };
    }
    return s;
}

} // namespace

std::variant<senders, setup_error> make_senders(const config& cfg, credentials creds,
                                                event_loops& loops) {
    if (cfg.no_token)
        return bare_pools(cfg, creds.certificate, loops);
    return clients(cfg, std::move(creds), loops);
}

} // namespace tokenflight::load
