// Hostile peers (issue 12): each defect is tested as a class, one case per sibling. Every server
// runs on loopback; servers that "never stop" are bounded by a byte cap and by the client giving up.
#include <tokenflight/client.hpp>
#include <tokenflight/token_endpoint.hpp>

#include "hostile_server.hpp"
#include "support.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using testing::reply;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// A host name that fails to resolve without any DNS query leaving the machine: a label longer
// than 63 bytes cannot be encoded, so the resolver refuses it locally.
const std::string unresolvable_host = std::string(64, 'a') + ".invalid";

credentials creds_for(const std::string& token_url) {
    credentials c;
    c.token_url = token_url;
    c.client_id = "hardening-client";
    c.client_secret = secret("HARDENING-SECRET-41f9");
    return c;
}

token_source_options quick_source() {
    token_source_options o;
    o.request_timeout = 2s;
    o.backoff.initial = 10ms;
    o.backoff.max = 50ms;
    o.backoff.max_attempts = 5;
    o.backoff.deadline = 5s;
    o.backoff.cooldown = 100ms;
    return o;
}

// A token endpoint that answers every request with `status` and `body`, counting requests.
struct scripted_token_endpoint {
    explicit scripted_token_endpoint(std::string body, unsigned status = 200)
        : body_(std::move(body)), status_(status),
          server_([this](const http::request&, http::response& res) -> asio::awaitable<reply> {
              res.result(status_);
              res.set(http::field::content_type, "application/json");
              res.body() = body_;
              co_return reply::send;
          }) {}
    std::string url() const { return server_.base_url() + "/token"; }
    std::uint64_t requests() const { return server_.requests(); }

private:
    std::string body_;
    unsigned status_;
    testing::http_server server_;
};

// Starts an operation with a callback and waits (bounded) for its result, from any thread.
template <class T, class Start>
std::pair<error_code, T> settle(Start start) {
    auto done = std::make_shared<std::promise<std::pair<error_code, T>>>();
    auto fut = done->get_future();
    start([done](error_code ec, T value) { done->set_value({ec, std::move(value)}); });
    REQUIRE(fut.wait_for(30s) == std::future_status::ready);
    return fut.get();
}

std::pair<error_code, access_token> get_token(token_source& source) {
    return settle<access_token>([&](auto h) { source.async_get_token(std::move(h)); });
}

std::pair<error_code, http::response> client_get(test::io_threads& io, tokenflight::client& c, const std::string& url) {
    return test::run(io.executor(), [&]() -> asio::awaitable<std::pair<error_code, http::response>> {
        auto [ec, res] = co_await c.async_get(url, tuple_awaitable);
        co_return std::pair<error_code, http::response>{ec, std::move(res)};
    }());
}

std::pair<error_code, http::response> pool_send(test::io_threads& io, http::connection_pool& pool,
                                                const std::string& url, http::request req,
                                                http::send_options so = {}) {
    auto loc = http::parse_url(url).value();
    req.target(loc.target);
    return test::run(io.executor(), [&]() -> asio::awaitable<std::pair<error_code, http::response>> {
        auto [ec, res] = co_await pool.async_send(loc.origin, std::move(req), so, tuple_awaitable);
        co_return std::pair<error_code, http::response>{ec, std::move(res)};
    }());
}

http::request get_request() { return http::request{http::verb::get, "/", 11}; }

} // namespace

// --- 1. failures before a stream exists -------------------------------------------------------

TEST_CASE("a host that does not resolve is a typed error, not a crash") {
    test::io_threads io(2);
    http::connection_pool pool(io.executor());
    for (int i = 0; i < 3; ++i) { // and again: the failed permit went back to the pool
        auto [ec, res] = pool_send(io, pool, "http://" + unresolvable_host + "/", get_request());
        CHECK(ec == asio::error::host_not_found);
    }
    CHECK(pool.stats().failures == 3);
    CHECK(pool.stats().open_connections == 0);

    // Through a token source and a client too: both reach the same connect path.
    token_source source(io.executor(), creds_for("http://localhost:1/token"), quick_source());
    auto [refused_ec, refused_token] = get_token(source);
    CHECK(refused_ec == asio::error::connection_refused); // retried within the deadline, then typed
    credentials bad = creds_for("https://" + unresolvable_host + "/token");
    token_source unresolvable(io.executor(), std::move(bad), quick_source());
    auto [unresolved_ec, unresolved_token] = get_token(unresolvable);
    CHECK(unresolved_ec == asio::error::host_not_found);
    CHECK_FALSE(unresolved_token);
}

TEST_CASE("connect refused and connect timeouts complete with typed errors") {
    test::io_threads io(2);
    http::pool_options o;
    o.connect_timeout = 300ms;
    http::connection_pool pool(io.executor(), o);

    // Refused: nothing listens on a port just released.
    std::uint16_t free_port;
    {
        asio::io_context tmp;
        asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
        free_port = a.local_endpoint().port();
    }
    auto [refused_ec, refused_res] = pool_send(io, pool, "http://127.0.0.1:" + std::to_string(free_port) + "/", get_request());
    CHECK(refused_ec == asio::error::connection_refused);

    // Cancelling or timing out a resolve that hangs: tests/integration/slow_resolve.cpp.

    // A TLS handshake that is never answered: the connect phase (resolve, TCP, TLS) ends at
    // connect_timeout, enforced by the timer. (A TCP connect that hangs cannot be made on
    // loopback without changing the firewall.)
    test::hostile_server silent({"", ""});
    const auto silent_url = "https://127.0.0.1:" + std::to_string(silent.port()) + "/";
    auto [silent_ec, silent_res] = pool_send(io, pool, silent_url, get_request());
    CHECK(silent_ec == errc::connect_timeout);
    http::send_options short_request;
    short_request.timeout = 200ms; // shorter than connect_timeout: the request's deadline wins
    auto [short_ec, short_res] = pool_send(io, pool, silent_url, get_request(), short_request);
    CHECK(short_ec == errc::request_timeout);
}

// --- 2. header injection and request smuggling, from every source ------------------------------

TEST_CASE("an access_token or token_type that could break a header line is refused, once, typed") {
    const std::pair<const char*, std::string> bodies[] = {
        {"CR LF in the token", R"({"access_token":"abc\r\nX-Evil: 1","token_type":"Bearer","expires_in":3600})"},
        {"a smuggled request",
         R"({"access_token":"abc\r\nContent-Length: 0\r\n\r\nGET /other HTTP/1.1\r\nHost: x","expires_in":3600})"},
        {"NUL in the token", R"({"access_token":"abc\u0000def","expires_in":3600})"},
        {"space in the token", R"({"access_token":"abc def","expires_in":3600})"},
        {"DEL in the token", R"({"access_token":"abc\u007f","expires_in":3600})"},
        {"non-ASCII in the token", R"({"access_token":"abc\u00e9","expires_in":3600})"},
        {"CR LF in the token type", R"({"access_token":"abc","token_type":"Bearer\r\nX-Evil: 1","expires_in":3600})"},
        {"space in the token type", R"({"access_token":"abc","token_type":"Bearer x","expires_in":3600})"},
    };
    for (const auto& [name, body] : bodies) {
        CAPTURE(name);
        test::io_threads io(2);
        scripted_token_endpoint auth(body);
        std::atomic<int> api_hits{0};
        testing::http_server api([&](const http::request&, http::response& res) -> asio::awaitable<reply> {
            ++api_hits;
            res.body() = "ok";
            co_return reply::send;
        });
        token_source source(io.executor(), creds_for(auth.url()), quick_source());
        tokenflight::client c(io.executor(), source);
        auto [ec, res] = client_get(io, c, api.base_url() + "/");
        CHECK(ec == errc::invalid_token_response);
        CHECK(auth.requests() == 1); // permanent: no retry loop
        CHECK(api_hits == 0);
    }
    // '!' and the rest of visible ASCII are accepted: real providers use them.
    test::io_threads io(1);
    scripted_token_endpoint auth(R"({"access_token":"a!b~c%d{e}","token_type":"bearer","expires_in":3600})");
    token_source source(io.executor(), creds_for(auth.url()), quick_source());
    auto [ec, t] = get_token(source);
    CHECK_FALSE(ec);
    CHECK(t.value() == "a!b~c%d{e}");
}

TEST_CASE("header names and values that would inject a line are refused where the head is serialised") {
    test::io_threads io(2);
    std::atomic<int> hits{0};
    testing::http_server api([&](const http::request&, http::response& res) -> asio::awaitable<reply> {
        ++hits;
        res.body() = "ok";
        co_return reply::send;
    });
    http::connection_pool pool(io.executor());
    struct bad_header {
        const char* what;
        std::string name, value;
        errc expected;
    };
    const bad_header cases[] = {
        {"CR LF in a value", "x-api-key", "k\r\nX-Evil: 1", errc::invalid_header_value},
        {"LF alone", "x-api-key", "k\nX-Evil: 1", errc::invalid_header_value},
        {"CR alone", "x-api-key", "k\rX", errc::invalid_header_value},
        {"NUL", "x-api-key", std::string("k\0x", 3), errc::invalid_header_value},
        {"ESC", "x-api-key", "k\x1b[2J", errc::invalid_header_value},
        {"DEL", "x-api-key", "k\x7f", errc::invalid_header_value},
        {"smuggled request", "x-api-key", "k\r\nContent-Length: 0\r\n\r\nGET /other HTTP/1.1", errc::invalid_header_value},
        {"colon in a name", "x-a:b", "v", errc::invalid_header_name},
        {"space in a name", "x a", "v", errc::invalid_header_name},
        {"CR LF in a name", "x\r\nX-Evil", "v", errc::invalid_header_name},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        auto req = get_request();
        req.set(c.name, c.value);
        auto [ec, res] = pool_send(io, pool, api.base_url() + "/", std::move(req));
        CHECK(ec == c.expected);
    }
    auto target = get_request();
    auto [target_ec, target_res] = test::run(io.executor(), [&]() -> asio::awaitable<std::pair<error_code, http::response>> {
        auto loc = http::parse_url(api.base_url()).value();
        http::request req{http::verb::get, "/a b\r\nX-Evil: 1", 11};
        auto [ec, res] = co_await pool.async_send(loc.origin, std::move(req), tuple_awaitable);
        co_return std::pair<error_code, http::response>{ec, std::move(res)};
    }());
    CHECK(target_ec == errc::invalid_request_target);
    CHECK(hits == 0);          // nothing was sent
    CHECK(pool.stats().connections_opened == 0); // not even a connection: the check comes first

    // Tabs and obs-text are legal in a value.
    auto ok = get_request();
    ok.set("x-note", "a\tb \xc3\xa9");
    auto [legal_ec, legal_res] = pool_send(io, pool, api.base_url() + "/", std::move(ok));
    CHECK_FALSE(legal_ec);
    CHECK(hits == 1);
}

TEST_CASE("default headers and auth schemes that could inject a line are refused by the client") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    const std::pair<std::string, std::string> bad[] = {
        {"x-api-key", "k\r\nX-Evil: 1"}, {"x-api-key", std::string("k\0", 2)}, {"Bad Name", "v"}, {"", "v"}};
    for (const auto& h : bad) {
        client_options o;
        o.default_headers = {h};
        CHECK_THROWS_AS(tokenflight::client(io.executor(), source, o), boost::system::system_error);
    }
    client_options scheme;
    scheme.auth_scheme = "Bearer\r\nX-Evil: 1";
    CHECK_THROWS_AS(tokenflight::client(io.executor(), source, scheme), boost::system::system_error);
}

// --- 3. memory and time stay bounded whatever the peer sends -----------------------------------

namespace {
struct endless {
    const char* what;
    test::hostile_server::script script;
    error_code expected;
};

std::vector<endless> endless_responses() {
    const std::string chunked = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    return {
        {"one endless chunk extension", {chunked + "1;ext=", "aaaaaaaaaaaaaaaa"}, errc::header_too_large},
        {"endless small chunk extensions", {chunked, "1;e=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n"}, errc::header_too_large},
        {"endless trailers", {chunked + "0\r\n", "X-Trailer: aaaaaaaaaaaaaaaaaaaaaaaa\r\n"}, errc::header_too_large},
        {"endless header fields", {"HTTP/1.1 200 OK\r\n", "X-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"}, errc::header_too_large},
        {"endless status line", {"HTTP/1.1 200 ", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, errc::header_too_large},
        {"endless large 1xx responses", {"", "HTTP/1.1 103 Early Hints\r\nLink: " + std::string(3000, 'l') + "\r\n\r\n"},
         errc::header_too_large},
        {"endless small 1xx responses", {"", "HTTP/1.1 100 Continue\r\n\r\n"}, errc::connection_closed},
        {"endless chunked body", {chunked, "4000\r\n" + std::string(0x4000, 'b') + "\r\n"}, errc::body_too_large},
        {"endless Content-Length body", {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", std::string(4096, 'b')},
         errc::body_too_large},
        {"endless body without a length", {"HTTP/1.1 200 OK\r\n\r\n", std::string(4096, 'b')}, errc::body_too_large},
    };
}
} // namespace

TEST_CASE("responses that never end: typed errors within the limits") {
    for (const auto& e : endless_responses()) {
        CAPTURE(e.what);
        test::io_threads io(1);
        test::hostile_server server(e.script);
        http::pool_options o;
        o.header_limit = 16 * 1024;
        o.body_limit = 1024 * 1024;
        o.request_timeout = 20s; // the limits must end it, not the clock
        http::connection_pool pool(io.executor(), o);
        auto [ec, res] = pool_send(io, pool, server.url(), get_request());
        CHECK(ec == e.expected);
        CHECK(ec.message().size() > 0);
    }
}

TEST_CASE("the request deadline fires whatever bytes keep arriving") {
    const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const test::hostile_server::script drips[] = {
        {chunked, "1\r\nx\r\n", 5ms},                          // a body that grows a byte at a time
        {chunked + "1;", "e", 5ms},                            // an extension that grows a byte at a time
        {"HTTP/1.1 200 OK\r\n", "X: y\r\n", 5ms},              // a header that never ends
        {"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", "b", 5ms}, // a body a byte at a time
    };
    int i = 0;
    // And a stream that always has bytes ready (the case a per-read timeout can miss): endless
    // small chunks with extensions, within generous limits, at loopback speed.
    {
        test::io_threads io(1);
        test::hostile_server server({chunked, "1;e=aaaaaaaa\r\nx\r\n", 0ms, std::uint64_t(512) << 20});
        http::pool_options o;
        o.request_timeout = 300ms;
        o.header_limit = 1u << 30; // the budget must not end it: the clock must
        o.body_limit = 1u << 30;
        http::connection_pool pool(io.executor(), o);
        auto [ec, res] = pool_send(io, pool, server.url(), get_request());
        CHECK(ec == errc::request_timeout);
    }
    for (const auto& s : drips) {
        CAPTURE(i++);
        test::io_threads io(1);
        test::hostile_server server(s);
        http::pool_options o;
        o.request_timeout = 400ms;
        http::connection_pool pool(io.executor(), o);
        auto [ec, res] = pool_send(io, pool, server.url(), get_request());
        CHECK(ec == errc::request_timeout);
    }
}

TEST_CASE("a connection is not reused after framing that parsers may disagree on") {
    const std::pair<const char*, std::string> responses[] = {
        {"HTTP/1.0 with Transfer-Encoding", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"a coding list with garbage", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chUnked\xff\xff\r\n\r\n0\r\n\r\n"},
        {"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
        {"chunked not last (two fields)", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"},
    };
    for (const auto& [what, response] : responses) {
        CAPTURE(what);
        test::io_threads io(1);
        // One response per connection, then the server closes: a connection wrongly kept would be
        // tried (and counted as reused) by the second request before it is found closed.
        test::hostile_server server({response, "", 1000ms, response.size() + 1});
        http::pool_options o;
        o.request_timeout = 2s;
        http::connection_pool pool(io.executor(), o);
        for (int i = 0; i < 2; ++i) (void)pool_send(io, pool, server.url(), get_request());
        CHECK(pool.stats().connections_reused == 0);
        CHECK(server.requests().size() == 2);
    }
}

// --- 4. a 401 that refreshing cannot fix --------------------------------------------------------

TEST_CASE("an API that rejects every token does not turn traffic into token requests") {
    test::io_threads io(2);
    testing::fake_auth_server auth;
    std::atomic<std::uint64_t> api_requests{0};
    testing::http_server api(
        [&](const http::request&, http::response& res) -> asio::awaitable<reply> {
            ++api_requests;
            res.result(http::status::unauthorized);
            res.set(http::field::www_authenticate, R"(Bearer error="invalid_token")");
            co_return reply::send;
        },
        {.threads = 2});
    token_source source(io.executor(), auth.client_credentials());
    tokenflight::client c(io.executor(), source);
    const std::string url = api.base_url() + "/";

    // 64 in flight for 10 s, each worker sending again as soon as its answer arrives.
    std::atomic<std::uint64_t> unauthorized{0}, errors{0};
    const auto start = clock::now();
    const auto end = start + 10s;
    auto worker = [&]() -> asio::awaitable<void> {
        while (clock::now() < end) {
            auto [ec, res] = co_await c.async_get(url, tuple_awaitable);
            if (ec) ++errors;
            else if (res.result() == http::status::unauthorized) ++unauthorized;
        }
    };
    std::vector<std::future<void>> workers;
    for (int i = 0; i < 64; ++i) workers.push_back(asio::co_spawn(io.executor(), worker(), asio::use_future));
    for (auto& w : workers) REQUIRE(w.wait_for(60s) == std::future_status::ready);
    const double elapsed_s = std::chrono::duration<double>(clock::now() - start).count();

    CHECK(errors == 0);
    CHECK(unauthorized >= 64); // every worker's requests were answered: the 401 returned, no error
    // The first token and its reactive refresh; then one refresh per futility backoff, which
    // starts at 1 s and doubles: the k-th further refresh needs 2^k - 1 s of run, so at most
    // log2(elapsed + 1) of them fit, however long the run took.
    const auto bound = 2 + static_cast<std::uint64_t>(std::log2(elapsed_s + 1));
    CAPTURE(elapsed_s);
    CAPTURE(bound);
    CHECK(auth.max_concurrent_requests() == 1);
    CHECK(auth.token_requests() <= bound);
    CHECK(c.stats().refreshes_held_back > 0);
    CHECK(c.stats().unauthorized_after_resend > 0);
}

TEST_CASE("insufficient_scope is returned as it is, with no token request") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    std::atomic<int> hits{0};
    testing::http_server api([&](const http::request&, http::response& res) -> asio::awaitable<reply> {
        ++hits;
        res.result(http::status::unauthorized);
        res.set(http::field::www_authenticate, R"(Bearer realm="api", error="insufficient_scope", scope="admin")");
        co_return reply::send;
    });
    token_source source(io.executor(), auth.client_credentials());
    tokenflight::client c(io.executor(), source);
    for (int i = 0; i < 20; ++i) {
        auto [ec, res] = client_get(io, c, api.base_url() + "/");
        CHECK_FALSE(ec);
        CHECK(res.result() == http::status::unauthorized);
    }
    CHECK(auth.token_requests() == 1);
    CHECK(hits == 20);
    CHECK(c.stats().resends_after_401 == 0);
}

TEST_CASE("insufficient_scope on a resend is returned without judging the refresh futile") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    auto [ec0, first] = get_token(source);
    REQUIRE_FALSE(ec0);
    const std::string first_value(first.value());
    testing::http_server api([&](const http::request& req, http::response& res) -> asio::awaitable<reply> {
        res.result(http::status::unauthorized);
        const bool first_token = req[http::field::authorization].ends_with(first_value);
        res.set(http::field::www_authenticate,
                first_token ? R"(Bearer error="invalid_token")" : R"(Bearer error="insufficient_scope")");
        co_return reply::send;
    });
    tokenflight::client c(io.executor(), source);
    for (int i = 0; i < 3; ++i) {
        auto [ec, res] = client_get(io, c, api.base_url() + "/");
        CHECK_FALSE(ec);
        CHECK(res.result() == http::status::unauthorized);
    }
    CHECK(auth.token_requests() == 2); // the first token, and one refresh for its invalid_token
    CHECK(c.stats().unauthorized_after_resend == 0);
    CHECK(c.stats().refreshes_held_back == 0);
    CHECK(source.stats().reactive_held_back == 0);
}

TEST_CASE("a healthy revocation refreshes at once, however often it happens") {
    test::io_threads io(2);
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    token_source source(io.executor(), auth.client_credentials());
    tokenflight::client c(io.executor(), source);
    for (int round = 0; round < 6; ++round) {
        CAPTURE(round);
        for (int i = 0; i < 5; ++i) {
            auto [ec, res] = client_get(io, c, api.url("/"));
            CHECK_FALSE(ec);
            CHECK(res.result() == http::status::ok);
        }
        api.revoke_all();
    }
    auto [ec, res] = client_get(io, c, api.url("/"));
    CHECK(res.result() == http::status::ok);
    CHECK(auth.token_requests() == 7);
    CHECK(c.stats().refreshes_held_back == 0);
}

TEST_CASE("a request that spans two revocations is sent a third time, never a fourth") {
    test::io_threads io(2);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    // The API accepts only tokens of generation >= accept_from. When it rejects generation g it
    // first makes the source fetch g+1 (another revocation's refresh, from elsewhere), so the
    // client finds a newer token in the cache each time.
    std::atomic<std::uint64_t> accept_from{3};
    std::mutex m;
    std::map<std::string, std::uint64_t> generation_of;
    std::atomic<int> sends{0};
    testing::http_server api([&](const http::request& req, http::response& res) -> asio::awaitable<reply> {
        ++sends;
        const std::string token(req[http::field::authorization].substr(7));
        std::uint64_t g = 0;
        {
            std::lock_guard l(m);
            g = generation_of[token];
        }
        if (g >= accept_from) {
            res.body() = "ok";
            co_return reply::send;
        }
        // Blocks this server thread only.
        auto [ec, newer] = settle<access_token>([&](auto h) { source.async_get_token_after(g, std::move(h)); });
        if (!ec) {
            std::lock_guard l(m);
            generation_of[std::string(newer.value())] = newer.generation();
        }
        res.result(http::status::unauthorized);
        co_return reply::send;
    }, {.threads = 2});
    auto [ec0, t1] = get_token(source);
    REQUIRE_FALSE(ec0);
    {
        std::lock_guard l(m);
        generation_of[std::string(t1.value())] = 1;
    }
    tokenflight::client c(io.executor(), source);

    // g1 rejected (g2 fetched), resend with g2 rejected (g3 fetched meanwhile), third send with g3.
    auto [ec, res] = client_get(io, c, api.base_url() + "/");
    CHECK_FALSE(ec);
    CHECK(res.result() == http::status::ok);
    CHECK(sends == 3);

    // Never a fourth send: with every generation rejected, the third 401 is returned.
    accept_from = 1000;
    sends = 0;
    auto [ec2, res2] = client_get(io, c, api.base_url() + "/");
    CHECK_FALSE(ec2);
    CHECK(res2.result() == http::status::unauthorized);
    CHECK(sends == 3);
}

// --- 5. transient by status and code ------------------------------------------------------------

TEST_CASE("503 with an OAuth error body is transient: one refresh, four token requests, every caller served") {
    test::io_threads io(2);
    testing::fake_auth_server auth;
    auth.error_next(3, "temporarily_unavailable", "try later", 503);
    token_source source(io.executor(), auth.client_credentials(), quick_source());
    std::atomic<int> served{0}, done{0};
    for (int i = 0; i < 20; ++i)
        source.async_get_token([&](error_code ec, access_token t) {
            if (!ec && t.generation() == 1) ++served;
            ++done;
        });
    REQUIRE(test::eventually([&] { return done == 20; }, 30s));
    CHECK(served == 20);
    CHECK(auth.token_requests() == 4);
    CHECK(source.stats().token_failures == 0);

    // The OAuth codes are transient whatever the status, too.
    testing::fake_auth_server auth2;
    auth2.error_next(2, "server_error", "oops", 400);
    token_source source2(io.executor(), auth2.client_credentials(), quick_source());
    auto [ec2, t2] = get_token(source2);
    CHECK_FALSE(ec2);
    CHECK(auth2.token_requests() == 3);
}

TEST_CASE("Retry-After is honoured for 503 with an OAuth body and for temporarily_unavailable under 400") {
    const std::pair<unsigned, const char*> answers[] = {{503, "server_error"}, {400, "temporarily_unavailable"}};
    for (const auto& [status, code] : answers) {
        CAPTURE(status);
        test::io_threads io(1);
        std::atomic<int> calls{0};
        std::mutex arrivals_mutex;
        std::vector<clock::time_point> arrivals;
        testing::http_server auth([&, status = status, code = std::string(code)](const http::request&, http::response& res)
                                      -> asio::awaitable<reply> {
            {
                std::lock_guard l(arrivals_mutex);
                arrivals.push_back(clock::now());
            }
            res.set(http::field::content_type, "application/json");
            if (calls++ == 0) {
                res.result(status);
                res.set(http::field::retry_after, "1");
                res.body() = R"({"error":")" + code + R"("})";
            } else {
                res.body() = R"({"access_token":"t","token_type":"Bearer","expires_in":3600})";
            }
            co_return reply::send;
        });
        std::mutex m;
        std::vector<clock::duration> waits;
        auto so = quick_source();
        so.on_event = [&](const token_event& e) {
            if (e.what != token_event::kind::attempt_failed || !e.retry_in) return;
            std::lock_guard l(m);
            waits.push_back(*e.retry_in);
        };
        token_source source(io.executor(), creds_for(auth.base_url() + "/token"), so);
        auto [ec, t] = get_token(source);
        CHECK_FALSE(ec);
        CHECK(calls == 2);
        std::lock_guard l(m);
        REQUIRE(waits.size() == 1);
        CHECK(waits[0] >= 1s); // the backoff alone would have waited 10-50 ms
        std::lock_guard al(arrivals_mutex);
        REQUIRE(arrivals.size() == 2);
        CHECK(arrivals[1] - arrivals[0] >= 1s); // as the server saw it
    }
}

// --- 6. no secret in any encoding ---------------------------------------------------------------

TEST_CASE("a token endpoint echoing the Basic credential does not get it into diagnostics") {
    test::io_threads io(1);
    testing::fake_auth_server::options ao;
    ao.client_id = "echo-client";
    ao.client_secret = "ECHO-SECRET-with:colon&amp";
    testing::fake_auth_server auth(ao);
    auth.malform_next(-1, testing::malformation::echo_request);
    auto creds = auth.client_credentials();
    creds.auth = client_auth::basic;
    token_source source(io.executor(), creds, quick_source());
    auto d = std::make_shared<diagnostics>(); // outlives the operation, as the header asks
    auto [ec, t] = settle<access_token>([&](auto h) { source.async_get_token(*d, [d, h = std::move(h)](error_code e, access_token v) mutable { h(e, std::move(v)); }); });
    CHECK(ec);
    const diagnostics& diag = *d;
    const std::string all = diag.to_string() + " " + diag.body_excerpt + " " + diag.error_description;
    CHECK(all.find("ECHO-SECRET") == std::string::npos);
    CHECK(all.find(base64_encode(form_urlencode("echo-client") + ':' + form_urlencode("ECHO-SECRET-with:colon&amp")).substr(0, 20)) ==
          std::string::npos);
    CHECK(all.find("***") != std::string::npos); // the echo was there, masked
}

// --- 7. lifetimes -------------------------------------------------------------------------------

TEST_CASE("async_get_token_after on a source that never held a token fetches one") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    auto [ec, t] = settle<access_token>([&](auto h) { source.async_get_token_after(5, std::move(h)); });
    CHECK_FALSE(ec);
    CHECK(t.generation() == 1);
}

TEST_CASE("a deferred operation launched after its source, client or pool is gone completes safely") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    auto source = std::make_unique<token_source>(io.executor(), auth.client_credentials());
    auto pool = std::make_unique<http::connection_pool>(io.executor());
    auto c = std::make_unique<tokenflight::client>(*source, *pool);
    auto get_later = source->async_get_token(asio::deferred);
    auto call_later = c->async_get(api.url("/"), asio::deferred);
    auto send_later = pool->async_send(http::parse_url(api.url("/")).value().origin, get_request(), asio::deferred);
    c.reset();
    pool.reset();
    source.reset();
    auto r1 = settle<access_token>([&](auto h) { std::move(get_later)(std::move(h)); });
    auto r2 = settle<http::response>([&](auto h) { std::move(call_later)(std::move(h)); });
    auto r3 = settle<http::response>([&](auto h) { std::move(send_later)(std::move(h)); });
    CHECK(r1.first == errc::closed);
    CHECK(r2.first == errc::closed);
    CHECK(r3.first == errc::closed);
}

// --- 8. protocol points -------------------------------------------------------------------------

TEST_CASE("only Bearer tokens are used unless the scheme is set explicitly") {
    test::io_threads io(1);
    testing::fake_auth_server::options ao;
    ao.token_type = "mac";
    testing::fake_auth_server auth(ao);
    testing::fake_api_server api(auth);
    token_source source(io.executor(), auth.client_credentials());
    tokenflight::client c(io.executor(), source);
    auto [ec, res] = client_get(io, c, api.url("/"));
    CHECK(ec == errc::unsupported_token_type);
    CHECK(api.requests() == 0);

    client_options raw;
    raw.auth_scheme = ""; // the provider guide's raw token
    tokenflight::client c2(io.executor(), source, raw);
    auto [ec2, res2] = client_get(io, c2, api.url("/"));
    CHECK_FALSE(ec2);
    CHECK(res2.result() == http::status::ok);

    testing::fake_auth_server::options lower;
    lower.token_type = "bearer";
    testing::fake_auth_server auth3(lower);
    std::string seen;
    testing::http_server echo([&](const http::request& req, http::response&) -> asio::awaitable<reply> {
        seen = std::string(req[http::field::authorization]);
        co_return reply::send;
    });
    token_source source3(io.executor(), auth3.client_credentials());
    tokenflight::client c3(io.executor(), source3);
    auto [ec3, res3] = client_get(io, c3, echo.base_url() + "/");
    CHECK_FALSE(ec3);
    CHECK(seen.rfind("Bearer ", 0) == 0); // canonical spelling on the wire
}

TEST_CASE("IPv6 literals get brackets in the Host header") {
    {
        asio::io_context probe;
        asio::ip::tcp::acceptor a(probe);
        error_code ec;
        a.open(asio::ip::tcp::v6(), ec);
        if (!ec) a.bind({asio::ip::make_address("::1"), 0}, ec);
        if (ec) {
            MESSAGE("no IPv6 loopback on this machine: skipped");
            return;
        }
    }
    test::io_threads io(1);
    test::hostile_server server({"HTTP/1.1 204 No Content\r\n\r\n", ""}, test::hostile_server::loopback::ipv6);
    http::connection_pool pool(io.executor());
    auto [ec, res] = pool_send(io, pool, server.url("/x"), get_request());
    CHECK_FALSE(ec);
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].find("\r\nHost: [::1]:" + std::to_string(server.port()) + "\r\n") != std::string::npos);
}
