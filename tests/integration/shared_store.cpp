// Token sources sharing a Redis store (issue 16), in one process: each source with its own
// store, as separate processes would have, against a real redis-server and the fake
// authorization server, counting its token requests.
#include "fleet/redis_token_store.hpp"

#include "redis_server.hpp"
#include "support.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr std::string_view material = "fleet key material, sixteen bytes or more";

// One "process": a store of its own, a token source consulting it, a client.
struct member {
    member(test::io_threads& io, const test::redis_server& redis, const testing::fake_auth_server& auth)
        : store(std::make_shared<fleet::redis_token_store>(io.executor(), *redis::parse_redis_url(redis.url()),
                                                           auth.client_credentials(), material,
                                                           fleet::store_options{.timeout = 2s, .lease = 10s})),
          source(io.executor(), auth.client_credentials(), options(store)), api_client(io.executor(), source) {}

    static token_source_options options(std::shared_ptr<shared_token_store> s) {
        token_source_options o;
        o.shared_store = std::move(s);
        return o;
    }

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

} // namespace

TEST_CASE("two sources sharing a store: a cold start and a revocation cost one token request each") {
    test::redis_server redis;
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    test::io_threads io(2);
    member a(io, redis, auth), b(io, redis, auth);

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

TEST_CASE("Redis away: each source requests its own token, and every request is served") {
    test::redis_server redis;
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    test::io_threads io(2);
    member a(io, redis, auth), b(io, redis, auth);
    redis.stop();
    CHECK(gets(a.api_client, api.url("/"), 20) == 20);
    CHECK(gets(b.api_client, api.url("/"), 20) == 20);
    CHECK(auth.token_requests() == 2);
    CHECK(a.source.stats().shared_store_errors >= 1);
    CHECK(b.source.stats().shared_store_errors >= 1);
}
