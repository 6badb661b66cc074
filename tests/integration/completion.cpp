// tokenflight's operations as an Asio user meets them: default completion tokens, constrained
// tokens, with_diagnostics and the diagnostics overloads, per-request options, events, close().
#include <tokenflight/client.hpp>
#include <tokenflight/completion_token.hpp>

#include "support.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

credentials creds_for(const testing::fake_auth_server& auth, std::string secret_value = "secret-1") {
    credentials c;
    c.token_url = auth.token_url();
    c.client_id = "client-1";
    c.client_secret = secret(std::move(secret_value));
    return c;
}

testing::fake_auth_server::options auth_options() {
    testing::fake_auth_server::options o;
    o.client_id = "client-1";
    o.client_secret = "secret-1";
    return o;
}

token_source_options quick_failures() {
    token_source_options o;
    o.backoff.initial = 10ms;
    o.backoff.max = 20ms;
    o.backoff.cooldown = 10ms;
    return o;
}

// Completion tokens are checked at the call: anything that is not one does not compile.
template <class T>
concept get_token_accepts = requires(token_source& s, T t) { s.async_get_token(t); };
static_assert(get_token_accepts<asio::deferred_t>);
static_assert(get_token_accepts<decltype(asio::use_awaitable)>);
static_assert(get_token_accepts<void (*)(error_code, access_token)>);
static_assert(!get_token_accepts<int>);
static_assert(!get_token_accepts<void (*)(error_code)>); // a handler of the wrong signature
template <class T>
concept send_accepts = requires(client& c, http::prepared_request r, T t) { c.async_send(r, t); };
static_assert(send_accepts<asio::deferred_t>);
static_assert(!send_accepts<void (*)(error_code, access_token)>);

} // namespace

TEST_CASE("without a completion token an operation is deferred: awaited directly, or launched later") {
    testing::fake_auth_server auth(auth_options());
    test::io_threads io;
    auto source = std::make_unique<token_source>(io.executor(), creds_for(auth));
    auto token = test::run(io.executor(), [&]() -> asio::awaitable<access_token> {
        co_return co_await source->async_get_token(); // throws on error: it did not
    }());
    REQUIRE(token);
    CHECK(token.generation() == 1);
    CHECK(auth.token_requests() == 1);

    // Made now, launched after the source is gone: it holds the shared state, not the object,
    // and it never started (a started one would have sent a token request for generation 2).
    auto later = source->async_get_token_after(token.generation());
    source.reset();
    std::promise<std::pair<error_code, access_token>> done;
    std::move(later)([&](error_code ec, access_token t) { done.set_value({ec, std::move(t)}); });
    auto fut = done.get_future();
    REQUIRE(fut.wait_for(30s) == std::future_status::ready);
    auto [ec, t] = fut.get();
    CHECK(ec == errc::closed);
    CHECK_FALSE(t);
    CHECK(auth.token_requests() == 1);
}

TEST_CASE("with_diagnostics: use_awaitable throws error_with_diagnostics carrying what the server said") {
    testing::fake_auth_server auth(auth_options());
    test::io_threads io;
    token_source source(io.executor(), creds_for(auth, "wrong-secret-value"), quick_failures());
    auto caught = test::run(io.executor(), [&]() -> asio::awaitable<std::optional<error_with_diagnostics>> {
        try {
            co_await source.async_get_token(with_diagnostics(asio::use_awaitable));
        } catch (const error_with_diagnostics& e) {
            co_return e;
        }
        co_return std::nullopt;
    }());
    REQUIRE(caught.has_value());
    CHECK(caught->code() == oauth_errc::invalid_client);
    CHECK(caught->code() == condition::oauth_error);
    CHECK(caught->get_diagnostics().http_status == 401);
    CHECK(caught->get_diagnostics().oauth_error == "invalid_client");
    const std::string what = caught->what();
    CHECK(what.find("invalid_client") != std::string::npos);
    CHECK(what.find("wrong-secret-value") == std::string::npos);
}

TEST_CASE("with_diagnostics: use_future rethrows it from get()") {
    testing::fake_auth_server auth(auth_options());
    test::io_threads io;
    token_source bad(io.executor(), creds_for(auth, "wrong-secret-value"), quick_failures());
    auto fut = bad.async_get_token(with_diagnostics(asio::use_future));
    REQUIRE(fut.wait_for(30s) == std::future_status::ready);
    // The promise is released on the io thread after the exception is stored; joining that thread
    // first orders it before this one touches the exception (ThreadSanitizer cannot see
    // libstdc++'s exception_ptr reference count).
    io.stop();
    try {
        fut.get();
        FAIL("a wrong secret gave a token");
    } catch (const error_with_diagnostics& e) {
        CHECK(e.code() == oauth_errc::invalid_client);
        CHECK(e.get_diagnostics().oauth_error == "invalid_client");
    }

}

TEST_CASE("with_diagnostics: a deferred operation launched with a handler of the adapted signature") {
    testing::fake_auth_server auth(auth_options());
    test::io_threads io;
    token_source good(io.executor(), creds_for(auth), quick_failures());
    auto op = good.async_get_token(with_diagnostics(asio::deferred));
    std::promise<std::pair<std::exception_ptr, access_token>> done;
    std::move(op)([&](std::exception_ptr ep, access_token t) { done.set_value({ep, std::move(t)}); });
    auto got = done.get_future();
    REQUIRE(got.wait_for(30s) == std::future_status::ready);
    auto [ep, token] = got.get();
    CHECK_FALSE(ep);
    CHECK(token);
}

TEST_CASE("client operations report the token endpoint's diagnostics: overload and with_diagnostics") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    test::io_threads io;
    token_source source(io.executor(), creds_for(auth, "wrong-secret-value"), quick_failures());
    client c(io.executor(), source);
    auto loc = http::parse_url(api.url("/data"));
    REQUIRE(loc.has_value());

    diagnostics diag;
    diag.http_status = 999; // stale content from an earlier use is replaced
    auto [ec, res] = test::run(io.executor(), c.async_send(*loc, http::request{http::verb::get, "", 11}, {}, diag,
                                                           asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == oauth_errc::invalid_client);
    CHECK(diag.http_status == 401);
    CHECK(diag.oauth_error == "invalid_client");

    auto caught = test::run(io.executor(), [&]() -> asio::awaitable<std::optional<error_with_diagnostics>> {
        co_await asio::steady_timer(co_await asio::this_coro::executor, 20ms).async_wait(asio::use_awaitable);
        try {
            co_await c.async_get(api.url("/data"), with_diagnostics(asio::use_awaitable));
        } catch (const error_with_diagnostics& e) {
            co_return e;
        }
        co_return std::nullopt;
    }());
    REQUIRE(caught.has_value());
    CHECK(caught->code() == oauth_errc::invalid_client);
    CHECK(caught->get_diagnostics().oauth_error == "invalid_client");
}

TEST_CASE("client diagnostics are cleared when the request succeeds") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    test::io_threads io;
    token_source source(io.executor(), creds_for(auth));
    client c(io.executor(), source);
    auto req = c.prepare(http::verb::get, api.url("/data"));
    REQUIRE(req.has_value());
    for (int i = 0; i < 2; ++i) { // the first waits for the token (slow path), the second does not
        diagnostics diag;
        diag.http_status = 999;
        auto [ec, res] = test::run(io.executor(), c.async_send(*req, {}, diag, asio::as_tuple(asio::use_awaitable)));
        CHECK_FALSE(ec);
        CHECK(res.result_int() == 200);
        CHECK(diag.http_status == 0);
    }
}

TEST_CASE("client per-request options: a timeout and a body limit of the request's own") {
    testing::fake_auth_server auth(auth_options());
    testing::http_server api([](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        if (req.target() == "/slow") {
            asio::steady_timer t(co_await asio::this_coro::executor, 3s);
            co_await t.async_wait(asio::use_awaitable);
        }
        res.result(http::status::ok);
        res.body() = std::string(req.target() == "/big" ? 64 * 1024 : 10, 'x');
        co_return testing::reply::send;
    });
    test::io_threads io;
    token_source source(io.executor(), creds_for(auth));
    client c(io.executor(), source);
    auto slow = c.prepare(http::verb::get, api.base_url() + "/slow");
    auto big = c.prepare(http::verb::get, api.base_url() + "/big");
    REQUIRE(slow.has_value());
    REQUIRE(big.has_value());

    http::send_options quick;
    quick.timeout = 200ms;
    auto [ec1, r1] = test::run(io.executor(), c.async_send(*slow, quick, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec1 == errc::request_timeout);

    http::send_options small;
    small.body_limit = 1024;
    auto [ec2, r2] = test::run(io.executor(), c.async_send(*big, small, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec2 == errc::body_too_large);
    auto loc = http::parse_url(api.base_url() + "/big");
    REQUIRE(loc.has_value());
    auto [ec3, r3] = test::run(io.executor(), c.async_send(*loc, http::request{http::verb::get, "", 11}, small,
                                                           asio::as_tuple(asio::use_awaitable)));
    CHECK(ec3 == errc::body_too_large);
    // The client's defaults take the same body.
    auto [ec4, r4] = test::run(io.executor(), c.async_send(*big, asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec4);
    CHECK(r4.body().size() == 64 * 1024);
}

TEST_CASE("client events tell the 401 path: resend with the new generation, then a final 401") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    test::io_threads io;
    token_source source(io.executor(), creds_for(auth));
    std::mutex m;
    std::vector<client_event> events;
    client_options co;
    co.on_event = [&](const client_event& e) {
        std::lock_guard l(m);
        events.push_back(e);
    };
    client c(io.executor(), source, co);
    auto req = c.prepare(http::verb::get, api.url("/data"));
    REQUIRE(req.has_value());
    auto send = [&] { return test::run(io.executor(), c.async_send(*req, asio::as_tuple(asio::use_awaitable))); };
    auto [ec1, r1] = send();
    CHECK(r1.result_int() == 200);
    api.revoke_all(); // generation 1 is refused from now on
    auto [ec2, r2] = send();
    CHECK(r2.result_int() == 200);
    {
        std::lock_guard l(m);
        REQUIRE(events.size() == 1);
        CHECK(events[0].what == client_event::kind::resend_after_401);
        CHECK(events[0].generation == 1);
        CHECK(events[0].new_generation == 2);
    }
    CHECK(c.stats().resends_after_401 == 1);
}

TEST_CASE("closing the client closes the pool it owns: io_context::run() returns with idle connections") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    asio::io_context ioc(1);
    token_source_options so;
    token_source source(ioc.get_executor(), creds_for(auth), so);
    client_options co;
    co.pool.idle_timeout = std::chrono::hours(1); // only close() can end the idle connections
    client c(ioc.get_executor(), source, co);
    error_code first, after_close;
    unsigned status = 0;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        auto [ec, res] = co_await c.async_get(api.url("/data"), asio::as_tuple(asio::use_awaitable));
        first = ec;
        status = res.result_int();
        c.close();
        source.close();
        auto [ec2, res2] = co_await c.async_get(api.url("/data"), asio::as_tuple(asio::use_awaitable));
        after_close = ec2;
    }, asio::detached);
    // run() must return by itself; a watchdog turns a hang into a failure, not a stuck suite.
    std::atomic<bool> returned{false}, watchdog_fired{false};
    std::thread watchdog([&] {
        for (int i = 0; i < 3000 && !returned.load(); ++i) std::this_thread::sleep_for(10ms);
        if (!returned.load()) {
            watchdog_fired = true;
            ioc.stop();
        }
    });
    ioc.run();
    returned = true;
    watchdog.join();
    CHECK_FALSE(watchdog_fired.load());
    CHECK_FALSE(first);
    CHECK(status == 200);
    CHECK(after_close == errc::closed);
}
