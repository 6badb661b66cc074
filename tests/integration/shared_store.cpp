// Token sources sharing a Redis store (issue 16), in one process: each source with its own
// store, as separate processes would have, against a real redis-server and the fake
// authorization server, counting its token requests.
#include "fleet/redis_token_store.hpp"

#include "redis_server.hpp"
#include "tls_certs.hpp"
#include "support.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/redis_token_store.hpp>
#include <tokenflight/token_registry.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <memory>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr std::string_view material = "fleet key material, sixteen bytes or more";

// The token events a source emitted, by kind.
struct event_log {
    std::mutex mutex;
    std::vector<token_event::kind> kinds;
    std::size_t count(token_event::kind k) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count(kinds.begin(), kinds.end(), k));
    }
};

// How many connections are subscribed to `channel` (redis-cli PUBSUB NUMSUB).
int subscribers(const test::redis_server& redis, const std::string& channel) {
    const std::string cmd = "/usr/bin/redis-cli -p " + std::to_string(redis.port()) + " PUBSUB NUMSUB '" + channel + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char line[256];
    std::vector<std::string> lines;
    while (std::fgets(line, sizeof line, p)) lines.emplace_back(line);
    ::pclose(p);
    return lines.size() >= 2 ? std::atoi(lines[1].c_str()) : 0;
}

// One "process": a store of its own, a token source consulting it, a client.
struct member {
    member(test::io_threads& io, const test::redis_server& redis, const testing::fake_auth_server& auth,
           fleet::store_options so = {.timeout = 2s, .lease = 10s})
        : store(std::make_shared<fleet::redis_token_store>(io.executor(), *redis::parse_redis_url(redis.url()),
                                                           auth.client_credentials(), material, so)),
          source(io.executor(), auth.client_credentials(), options(store, events)), api_client(io.executor(), source) {}

    static token_source_options options(std::shared_ptr<shared_token_store> s, std::shared_ptr<event_log> log) {
        token_source_options o;
        o.shared_store = std::move(s);
        o.on_event = [log](const token_event& e) {
            std::lock_guard lock(log->mutex);
            log->kinds.push_back(e.what);
        };
        return o;
    }

    std::shared_ptr<event_log> events = std::make_shared<event_log>();
    std::shared_ptr<fleet::redis_token_store> store;
    token_source source;
    client api_client;
};

// `n` concurrent token requests on `s`; every token's value.
std::vector<std::string> tokens(token_source& s, int n) {
    std::vector<std::future<access_token>> f;
    for (int i = 0; i < n; ++i) f.push_back(s.async_get_token(asio::use_future));
    std::vector<std::string> out;
    for (auto& x : f) {
        REQUIRE(x.wait_for(30s) == std::future_status::ready);
        out.emplace_back(x.get().value());
    }
    return out;
}

// `n` concurrent GETs through `c`; how many got a 200.
int gets(client& c, const std::string& url, int n) {
    std::vector<std::future<http::response>> f;
    for (int i = 0; i < n; ++i) f.push_back(c.async_get(url, asio::use_future));
    int ok = 0;
    for (auto& x : f) {
        REQUIRE(x.wait_for(30s) == std::future_status::ready);
        if (x.get().result_int() == 200) ++ok;
    }
    return ok;
}

// Two "processes" sharing a Redis, an authorization server and an API.
struct two_members {
    test::redis_server redis;
    testing::fake_auth_server auth;
    testing::fake_api_server api{auth};
    test::io_threads io{2};
    member a{io, redis, auth}, b{io, redis, auth};
};

} // namespace

TEST_CASE_FIXTURE(two_members, "two sources sharing a store: a cold start and a revocation cost one token request each") {
    // Cold: 50 callers on each source at once.
    auto fa = std::async(std::launch::async, [&] { return tokens(a.source, 50); });
    auto fb = std::async(std::launch::async, [&] { return tokens(b.source, 50); });
    const auto ta = fa.get(), tb = fb.get();
    CHECK(auth.token_requests() == 1);
    CHECK(ta.front() == tb.front());
    CHECK(a.source.stats().shared_adopted + b.source.stats().shared_adopted == 1);

    // Every token revoked: both sources' requests get 401s, and one refresh serves them all.
    api.revoke_all();
    auto ga = std::async(std::launch::async, [&] { return gets(a.api_client, api.url("/"), 50); });
    auto gb = std::async(std::launch::async, [&] { return gets(b.api_client, api.url("/"), 50); });
    CHECK(ga.get() == 50);
    CHECK(gb.get() == 50);
    CHECK(auth.token_requests() == 2);
    CHECK(a.source.stats().shared_store_errors + b.source.stats().shared_store_errors == 0);
}

TEST_CASE_FIXTURE(two_members, "Redis away: each source requests its own token, and every request is served") {
    redis.stop();
    CHECK(gets(a.api_client, api.url("/"), 20) == 20);
    CHECK(gets(b.api_client, api.url("/"), 20) == 20);
    CHECK(auth.token_requests() == 2);
    for (auto* m : {&a, &b}) {
        CHECK(m->source.stats().shared_store_errors >= 1);
        CHECK(m->events->count(token_event::kind::shared_store_failed) == m->source.stats().shared_store_errors);
        CHECK(m->events->count(token_event::kind::token_adopted) == 0);
    }
}

TEST_CASE("Redis restarted: the sources fall back while it is away and share again once it is back") {
    test::redis_server redis;
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    test::io_threads io(2);
    const fleet::store_options so{.timeout = 2s, .lease = 10s, .backoff = 50ms, .max_backoff = 200ms};
    member a(io, redis, auth, so), b(io, redis, auth, so);
    CHECK(gets(a.api_client, api.url("/"), 10) == 10);
    CHECK(gets(b.api_client, api.url("/"), 10) == 10);
    CHECK(auth.token_requests() == 1); // b adopted a's
    redis.stop();
    api.revoke_all();
    CHECK(gets(a.api_client, api.url("/"), 10) == 10);
    CHECK(gets(b.api_client, api.url("/"), 10) == 10);
    CHECK(auth.token_requests() == 3); // one each
    redis.start();               // empty, on the same port
    std::this_thread::sleep_for(300ms); // past the 200 ms longest backoff: the next claim connects
    api.revoke_all();
    CHECK(gets(a.api_client, api.url("/"), 10) == 10);
    CHECK(gets(b.api_client, api.url("/"), 10) == 10);
    CHECK(auth.token_requests() == 4); // shared again
    CHECK(b.source.stats().shared_adopted == 2);
}

TEST_CASE("Redis frozen (SIGSTOP) at the default 50 ms step: each source fetches its own, no request fails") {
    test::redis_server redis;
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    test::io_threads io(2);
    const fleet::store_options so{.timeout = 50ms, .lease = 10s};
    member a(io, redis, auth, so), b(io, redis, auth, so);
    CHECK(gets(a.api_client, api.url("/"), 10) == 10);
    CHECK(gets(b.api_client, api.url("/"), 10) == 10);
    const auto before = auth.token_requests(); // 1, or 2 if a slow machine's step timed out
    redis.pause();
    api.revoke_all();
    CHECK(gets(a.api_client, api.url("/"), 20) == 20);
    CHECK(gets(b.api_client, api.url("/"), 20) == 20);
    CHECK(auth.token_requests() == before + 2);
    CHECK(a.events->count(token_event::kind::shared_store_failed) >= 1);
    CHECK(b.events->count(token_event::kind::shared_store_failed) >= 1);
    redis.resume();
}

namespace {
// The token or the error, as a value through a future: an exception thrown across threads
// through a future is reference-counted inside libstdc++, which ThreadSanitizer cannot see (it
// reports a data race that is none).
std::future<std::pair<error_code, access_token>> token_as_value(token_source& source) {
    auto p = std::make_shared<std::promise<std::pair<error_code, access_token>>>();
    auto f = p->get_future();
    source.async_get_token([p](error_code ec, access_token t) { p->set_value({ec, std::move(t)}); });
    return f;
}
} // namespace

TEST_CASE("a lease given up (the holder's request failed) wakes the waiting process at once") {
    test::redis_server redis;
    testing::fake_auth_server auth;
    test::io_threads io(2);
    // A minute's lease: only the announcement of the release can end b's wait within the 30 s
    // the futures below are given.
    const fleet::store_options so{.timeout = 2s, .lease = 60s};
    member a(io, redis, auth, so), b(io, redis, auth, so);
    auth.set_latency(300ms);
    auth.error_next(1, "invalid_client", "refused once", 401);
    auto fa = token_as_value(a.source);
    while (auth.token_requests() == 0) std::this_thread::sleep_for(1ms); // a holds the lease
    auto fb = token_as_value(b.source);
    REQUIRE(fa.wait_for(30s) == std::future_status::ready);
    CHECK(fa.get().first); // a's refresh failed, and a gave the lease up
    REQUIRE(fb.wait_for(30s) == std::future_status::ready);
    const auto [eb, tb] = fb.get();
    CHECK_FALSE(eb);
    CHECK_FALSE(tb.value().empty()); // b took the lease and fetched
    CHECK(auth.token_requests() == 2);
}

TEST_CASE("closing a source while it waits for another process's lease ends its wait at once") {
    test::redis_server redis;
    testing::fake_auth_server auth;
    test::io_threads io(2);
    const fleet::store_options so{.timeout = 2s, .lease = 60s};
    member a(io, redis, auth, so), b(io, redis, auth, so);
    auth.set_latency(60s); // a holds the lease all along: no announcement ends b's wait
    auto fa = token_as_value(a.source);
    while (auth.token_requests() == 0) std::this_thread::sleep_for(1ms);
    auto fb = token_as_value(b.source);
    // b is claiming, subscribed and waiting on a's lease (a minute long), when it is closed.
    const auto channel = fleet::keys_for("tokenflight:", auth.client_credentials()).channel;
    while (subscribers(redis, channel) == 0) std::this_thread::sleep_for(5ms);
    b.source.close();
    REQUIRE(fb.wait_for(30s) == std::future_status::ready);
    CHECK(fb.get().first == asio::error::operation_aborted);
    // The claim stopped waiting too (its subscription is gone), not at the lease's end a minute
    // later: the test's own limit is 30 s.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (subscribers(redis, channel) != 0) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(5ms);
    }
    CHECK(b.source.stats().shared_store_errors == 0); // a cancellation is not the store's failure
    CHECK(auth.token_requests() == 1); // b never fetched
    a.source.close();
    REQUIRE(fa.wait_for(30s) == std::future_status::ready);
}

TEST_CASE("an adopted token keeps its requester's refresh point and expiry margin, and says it was adopted") {
    test::redis_server redis;
    testing::fake_auth_server::options ao;
    ao.lifetime = 2s; // a whole-second count of what is left would take 1.99 s for 1 s
    testing::fake_auth_server auth(ao);
    test::io_threads io(2);
    member a(io, redis, auth), b(io, redis, auth);
    const auto ta = a.source.async_get_token(asio::use_future).get();
    std::this_thread::sleep_for(300ms); // b takes it later in its life
    const auto tb = b.source.async_get_token(asio::use_future).get();
    CHECK(tb.value() == ta.value());
    CHECK(auth.token_requests() == 1);
    // The same instants as a's, not ones computed from what was left when b took it (the
    // record keeps milliseconds; clocks are read twice on the way).
    for (auto [x, y] : {std::pair{ta.expires_at(), tb.expires_at()}, std::pair{ta.refresh_at(), tb.refresh_at()},
                        std::pair{ta.usable_until(), tb.usable_until()}}) {
        CHECK(y > x - 20ms);
        CHECK(y < x + 20ms);
    }
    // The event is reported on the source's strand, which may run it after the caller resumed.
    CHECK(test::eventually([&] { return b.events->count(token_event::kind::token_adopted) == 1; }));
    CHECK(b.events->count(token_event::kind::request_sent) == 0);
    CHECK(b.source.stats().shared_adopted == 1);
    CHECK(b.source.stats().token_requests == 0);
}

TEST_CASE("a shared token past this source's expiry margin is not taken: the source fetches its own") {
    test::redis_server redis;
    testing::fake_auth_server::options ao;
    ao.lifetime = 3s;
    testing::fake_auth_server auth(ao);
    test::io_threads io(2);
    member a(io, redis, auth);
    // b stops using a token 2.5 s before it expires: a's, 1 s old, has 2 s left.
    auto log = std::make_shared<event_log>();
    auto o = member::options(std::make_shared<fleet::redis_token_store>(io.executor(), *redis::parse_redis_url(redis.url()),
                                                                       auth.client_credentials(), material,
                                                                       fleet::store_options{.timeout = 2s, .lease = 10s}),
                             log);
    o.refresh.expiry_margin = 2500ms;
    token_source b(io.executor(), auth.client_credentials(), o);
    const auto ta = a.source.async_get_token(asio::use_future).get();
    std::this_thread::sleep_for(1s);
    const auto tb = b.async_get_token(asio::use_future).get();
    CHECK(tb.value() != ta.value());
    CHECK(auth.token_requests() == 2);
    CHECK(log->count(token_event::kind::token_adopted) == 0);
}

TEST_CASE("sender-constrained tokens are never shared: DPoP and a client certificate refuse a store") {
    testing::fake_auth_server auth;
    asio::io_context ioc;
    auto store = make_redis_token_store(ioc.get_executor(), auth.client_credentials(), {});
    const auto refused = [&](credentials c, token_source_options o) {
        o.shared_store = store;
        try {
            token_source s(ioc.get_executor(), std::move(c), std::move(o));
        } catch (const boost::system::system_error& e) {
            return e.code() == errc::token_not_shareable;
        }
        return false;
    };
    token_source_options dpop;
    dpop.dpop.enabled = true;
    CHECK(refused(auth.client_credentials(), dpop));
    auto with_cert = auth.client_credentials();
    const auto ca = test::make_cert("fleet CA", "", nullptr);
    const auto leaf = test::make_cert("fleet-client", "DNS:client.test", &ca, -3600, 24 * 3600, "clientAuth");
    with_cert.certificate = http::client_identity::from_pem(leaf.cert_pem, secret(leaf.key_pem)).value();
    CHECK(refused(with_cert, {}));
    CHECK_FALSE(refused(auth.client_credentials(), {})); // a bearer token is shared
}

TEST_CASE("make_redis_token_store: 16 bytes of key material, a Redis URL, no password in the error") {
    asio::io_context ioc;
    testing::fake_auth_server::options ao;
    ao.client_secret = "short"; // 5 bytes: too little to derive the record key from
    testing::fake_auth_server auth(ao);
    const auto code_of = [&](redis_store_options o) -> error_code {
        try {
            (void)make_redis_token_store(ioc.get_executor(), auth.client_credentials(), std::move(o));
        } catch (const boost::system::system_error& e) {
            CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
            return e.code();
        }
        return {};
    };
    CHECK(code_of({}) == errc::missing_credentials);
    redis_store_options keyed;
    keyed.key_material = secret("sixteen bytes of key material");
    CHECK(code_of(keyed) == error_code{});
    keyed.url = "redis://:hunter2@"; // no host
    CHECK(code_of(keyed) == errc::invalid_url);
    keyed.url = "http://:hunter2@127.0.0.1";
    CHECK(code_of(keyed) == errc::unsupported_scheme);
}

TEST_CASE("a registry gives each scope a store of its own, and refuses one store for all") {
    testing::fake_auth_server auth;
    asio::io_context ioc;
    std::vector<std::string> scopes;
    token_registry registry(ioc.get_executor(), auth.client_credentials(), {}, [&](const credentials& c) {
        scopes.push_back(c.scope);
        return make_redis_token_store(ioc.get_executor(), c, {});
    });
    (void)registry.source("read");
    (void)registry.source("write");
    (void)registry.source("read"); // the same source: no second store
    CHECK(scopes == std::vector<std::string>{"read", "write"});
    token_source_options shared;
    shared.shared_store = make_redis_token_store(ioc.get_executor(), auth.client_credentials(), {});
    CHECK_THROWS_AS(token_registry(ioc.get_executor(), auth.client_credentials(), shared), std::invalid_argument);
}
