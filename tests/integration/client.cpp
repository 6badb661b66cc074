#include <tokenflight/client.hpp>

#include "support.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/www_authenticate.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr const char* api_key = "key-123";

struct world {
    testing::fake_auth_server auth;
    testing::fake_api_server api;
    test::io_threads io;
    token_source source;
    tokenflight::client client;

    explicit world(client_options co = default_client_options(), testing::fake_api_server::options ao = api_options(),
                   token_source_options so = source_options(), int threads = 1)
        : auth(auth_options()), api(auth, std::move(ao)), io(threads),
          source(io.executor(), creds(auth), std::move(so)), client(io.executor(), source, std::move(co)) {}

    static testing::fake_auth_server::options auth_options() {
        testing::fake_auth_server::options o;
        o.client_id = "client-1";
        o.client_secret = "secret-1";
        return o;
    }
    static credentials creds(const testing::fake_auth_server& a) {
        credentials c;
        c.token_url = a.token_url();
        c.client_id = "client-1";
        c.client_secret = secret("secret-1");
        return c;
    }
    static client_options default_client_options() {
        client_options o;
        o.default_headers = {{"x-api-key", api_key}, {"Referer", "https://app.example/"}, {"Origin", "https://app.example"}};
        return o;
    }
    static testing::fake_api_server::options api_options() {
        testing::fake_api_server::options o;
        o.api_key = api_key;
        o.expected_headers = {{"Referer", "https://app.example/"}, {"Origin", "https://app.example"}};
        return o;
    }
    static token_source_options source_options() {
        token_source_options o;
        o.backoff.initial = 10ms;
        o.backoff.max = 40ms;
        o.backoff.max_attempts = 3;
        o.backoff.cooldown = 300ms;
        return o;
    }

    std::tuple<error_code, http::response> get(std::string path = "/data") {
        return test::run(io.executor(), client.async_get(api.url(path), asio::as_tuple(asio::use_awaitable)));
    }
};

} // namespace

TEST_CASE("requests carry default headers and a Bearer token") {
    world w;
    auto [ec, res] = w.get();
    REQUIRE_FALSE(ec);
    CHECK(res.result() == http::status::ok);
    CHECK(res.body() == R"({"ok":true})");
    CHECK(w.api.requests_missing_headers() == 0);
    CHECK(w.auth.token_requests() == 1);
    for (int i = 0; i < 10; ++i) CHECK(std::get<1>(w.get()).result() == http::status::ok);
    CHECK(w.auth.token_requests() == 1);
    CHECK(w.client.stats().requests == 11);
}

TEST_CASE("the Authorization header on the wire, exactly, for each scheme setting, before and after a 401") {
    struct scheme_case {
        const char* name;
        const char* token_type;               // what the token endpoint says
        std::optional<std::string> auth_scheme; // client_options::auth_scheme
        std::string prefix;                   // what must precede the token on the wire
    };
    const scheme_case cases[] = {
        {"token type Bearer", "Bearer", std::nullopt, "Bearer "},
        {"token type in another case: canonical spelling", "bEaReR", std::nullopt, "Bearer "},
        {"explicit scheme", "Bearer", std::string("Token"), "Token "},
        {"explicit scheme over a token type the client does not know", "mac", std::string("Bearer"), "Bearer "},
        {"no scheme: the raw token, as the provider guide sends it", "Bearer", std::string(""), ""},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        auto ao = world::auth_options();
        ao.token_type = c.token_type;
        testing::fake_auth_server auth(ao);
        auto api_opts = world::api_options();
        api_opts.auth_scheme = c.prefix.empty() ? "" : c.prefix.substr(0, c.prefix.size() - 1); // strict
        testing::fake_api_server api(auth, api_opts);
        test::io_threads io(1);
        token_source source(io.executor(), world::creds(auth));
        auto co = world::default_client_options();
        co.auth_scheme = c.auth_scheme;
        tokenflight::client cl(io.executor(), source, co);

        auto [ec1, res1] = test::run(io.executor(), cl.async_get(api.url("/a"), asio::as_tuple(asio::use_awaitable)));
        REQUIRE_FALSE(ec1);
        CHECK(res1.result() == http::status::ok);
        const std::string t1(source.try_get_token().value());
        api.revoke_all();
        auto [ec2, res2] = test::run(io.executor(), cl.async_get(api.url("/b"), asio::as_tuple(asio::use_awaitable)));
        REQUIRE_FALSE(ec2);
        CHECK(res2.result() == http::status::ok);
        const std::string t2(source.try_get_token().value());
        CHECK(t1 != t2);
        CHECK(cl.stats().resends_after_401 == 1);
        const std::vector<std::string> expected{c.prefix + t1, c.prefix + t1, c.prefix + t2};
        CHECK(api.recent_authorizations() == expected);
    }
}

TEST_CASE("a 401 gets a newer token and one resend, body kept") {
    world w;
    REQUIRE(std::get<1>(w.get()).result() == http::status::ok);
    w.api.revoke_all();
    auto [ec, res] = test::run(w.io.executor(), w.client.async_post(w.api.url("/items"), "the-body",
                                                                  asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    CHECK(res.result() == http::status::ok);
    CHECK(w.auth.token_requests() == 2);
    CHECK(w.client.stats().resends_after_401 == 1);
    CHECK(w.api.count_status(401) == 1);
    auto bodies = w.api.recent_bodies();
    REQUIRE(bodies.size() >= 2);
    CHECK(bodies[bodies.size() - 1] == "the-body");
    CHECK(bodies[bodies.size() - 2] == "the-body");
    CHECK(w.api.requests_missing_headers() == 0); // the resent request had them too
}

TEST_CASE("a second 401 is returned to the caller, never looped; WWW-Authenticate is readable") {
    // An API that rejects every token.
    testing::http_server api([](const http::request&, http::response& res) -> asio::awaitable<testing::reply> {
        res.result(http::status::unauthorized);
        res.set(http::field::www_authenticate, R"(Bearer error="invalid_token", error_description="nope")");
        co_return testing::reply::send;
    });
    world w;
    auto [ec, res] = test::run(w.io.executor(), w.client.async_get(api.base_url() + "/x", asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    CHECK(res.result() == http::status::unauthorized);
    CHECK(api.requests() == 2);
    CHECK(w.auth.token_requests() == 2);
    CHECK(w.client.stats().unauthorized_after_resend == 1);
    auto challenges = parse_www_authenticate(res[http::field::www_authenticate]);
    REQUIRE(challenges.size() == 1);
    CHECK(challenges[0].error() == "invalid_token");
    CHECK(challenges[0].error_description() == "nope");
}

TEST_CASE("403 for a missing API key is returned and not retried") {
    auto co = world::default_client_options();
    co.default_headers.erase(co.default_headers.begin()); // no x-api-key
    world w(co);
    auto [ec, res] = w.get();
    REQUIRE_FALSE(ec);
    CHECK(res.result() == http::status::forbidden);
    CHECK(w.api.requests() == 1);
    CHECK(w.auth.token_requests() == 1);
    CHECK(w.client.stats().resends_after_401 == 0);
}

TEST_CASE("401s that arrive after the refresh already happened cause no further token request") {
    world w;
    REQUIRE(std::get<1>(w.get()).result() == http::status::ok);
    auto old_token = w.source.try_get_token();
    REQUIRE(old_token.generation() == 1);
    w.api.revoke_all();
    REQUIRE(std::get<1>(w.get()).result() == http::status::ok); // refreshed to generation 2
    CHECK(w.auth.token_requests() == 2);
    // late 401s for generation 1 are answered from the cache
    for (int i = 0; i < 100; ++i) {
        auto [ec, t] = test::run(w.io.executor(),
                                 w.source.async_get_token_after(old_token.generation(), asio::as_tuple(asio::use_awaitable)));
        CHECK_FALSE(ec);
        CHECK(t.generation() == 2);
    }
    CHECK(w.auth.token_requests() == 2);
}

TEST_CASE("token endpoint down during a storm: every request completes with the token error") {
    auto so = world::source_options();
    world w(world::default_client_options(), world::api_options(), so, 2);
    REQUIRE(std::get<1>(w.get()).result() == http::status::ok);
    w.auth.fail_next(1'000'000, 503);
    const auto start = clock::now();
    w.api.revoke_all();
    std::atomic<int> done{0}, token_errors{0};
    const int n = 2000;
    for (int i = 0; i < n; ++i) {
        w.client.async_get(w.api.url("/storm"), [&](error_code ec, http::response) {
            if (ec == errc::server_unavailable) ++token_errors;
            ++done;
        });
    }
    REQUIRE(test::eventually([&] { return done == n; }, 60s));
    const auto elapsed = clock::now() - start;
    CHECK(token_errors == n);
    // One refresh at a time, each of at most max_attempts requests, and after a failed refresh
    // the next waits out the cool-down: at most 1 + elapsed / cooldown refreshes fit in the storm
    // however long it takes, far fewer than its 2,000 requests.
    const auto extra = w.auth.token_requests() - 1;
    const auto refreshes_bound = 1 + static_cast<std::uint64_t>(elapsed / so.backoff.cooldown);
    CAPTURE(extra);
    CAPTURE(refreshes_bound);
    CHECK(extra >= 1);
    CHECK(w.auth.max_concurrent_requests() == 1);
    CHECK(extra <= static_cast<std::uint64_t>(so.backoff.max_attempts) * refreshes_bound);
}

TEST_CASE("bad URLs and plain http to remote hosts are refused") {
    world w;
    auto [ec, res] = test::run(w.io.executor(), w.client.async_get("::not a url::", asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::invalid_url);
    auto [ec2, res2] = test::run(w.io.executor(),
                                 w.client.async_get("http://api.example.com/x", asio::as_tuple(asio::use_awaitable)));
    CHECK(ec2 == errc::insecure_transport);
    CHECK(w.auth.token_requests() == 0);
}

TEST_CASE("a deferred request owns its URL") {
    world w;
    auto op = [&] {
        std::string url = w.api.url("/deferred"); // gone before the operation starts
        return w.client.async_get(url, asio::deferred);
    }();
    std::promise<unsigned> p;
    std::move(op)([&](error_code ec, http::response res) { p.set_value(ec ? 0 : res.result_int()); });
    auto f = p.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == 200);
}
