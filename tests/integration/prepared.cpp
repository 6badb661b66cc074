// Prepared requests and brief responses: the exact bytes on the wire, the Authorization cache per
// token generation, the 401 path, and the brief parser's limits (each sibling of the hardening
// tests that the full parser has).
#include <tokenflight/client.hpp>

#include "hostile_server.hpp"
#include "support.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

template <class T>
struct outcome {
    error_code ec;
    T value;
};

// Starts an operation with a callback and waits for it (the handler owns what it writes to).
template <class T, class Start>
outcome<T> wait_for(Start start) {
    auto p = std::make_shared<std::promise<outcome<T>>>();
    auto f = p->get_future();
    start([p](error_code ec, T v) { p->set_value({ec, std::move(v)}); });
    REQUIRE(f.wait_for(30s) == std::future_status::ready);
    return f.get();
}

outcome<http::brief_response> send_brief(tokenflight::client& c, const http::prepared_request& req) {
    return wait_for<http::brief_response>([&](auto h) { c.async_send_brief(req, std::move(h)); });
}

outcome<http::brief_response> pool_brief(http::connection_pool& pool, const http::prepared_request& req,
                                         http::send_options so = {}) {
    return wait_for<http::brief_response>([&](auto h) { pool.async_send_brief(req, so, std::move(h)); });
}

http::prepared_request prepared(std::string url, std::vector<std::pair<std::string, std::string>> headers = {},
                                std::string body = {}, http::verb method = http::verb::get) {
    auto p = http::make_prepared_request(method, url, std::move(headers), std::move(body));
    REQUIRE(p.has_value());
    return *p;
}

struct api_world {
    testing::fake_auth_server auth;
    testing::fake_api_server api{auth, api_options()};
    test::io_threads io{2};
    token_source source{io.executor(), auth.client_credentials()};
    tokenflight::client client{io.executor(), source, client_options_()};

    static testing::fake_api_server::options api_options() {
        testing::fake_api_server::options o;
        o.api_key = "key-1";
        o.auth_scheme = "Bearer"; // exactly "Bearer <token>" or 401
        return o;
    }
    static client_options client_options_() {
        client_options o;
        o.default_headers = {{"x-api-key", "key-1"}};
        return o;
    }
};

} // namespace

TEST_CASE("a prepared request is serialised once: head, Authorization of the token in use, body") {
    test::hostile_server server({"HTTP/1.1 204 No Content\r\n\r\n", ""});
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    client_options co;
    co.default_headers = {{"x-api-key", "k"}, {"Referer", "https://app.example/"}};
    tokenflight::client c(io.executor(), source, co);
    // an Authorization given here is the client's to set: dropped
    auto req = c.prepare(http::verb::get, server.url("/items?id=7"), {{"Referer", "https://mine.example/"},
                                                                       {"Authorization", "Bearer stolen"}});
    REQUIRE(req.has_value());
    const std::string host = "127.0.0.1:" + std::to_string(server.port());
    CHECK(req->head_without_authorization() == "GET /items?id=7 HTTP/1.1\r\nReferer: https://mine.example/\r\n"
                                               "x-api-key: k\r\nHost: " + host + "\r\nUser-Agent: tokenflight/0.1\r\n");
    auto r = send_brief(c, *req);
    REQUIRE_FALSE(r.ec);
    CHECK(r.value.status == 204);
    const std::string token(source.try_get_token().value());
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0] == std::string(req->head_without_authorization()) + "Authorization: Bearer " + token +
                                      "\r\n\r\n");
}

TEST_CASE("a prepared POST carries its body and Content-Length on every send, sent again after a 401") {
    api_world w;
    auto req = w.client.prepare(http::verb::post, w.api.url("/orders"), {{"Content-Type", "application/json"}},
                                R"({"n":1})");
    REQUIRE(req.has_value());
    CHECK(req->head_without_authorization().find("\r\nContent-Length: 7\r\n") != std::string_view::npos);
    REQUIRE(send_brief(w.client, *req).value.status == 200);
    w.api.revoke_all();
    auto r = send_brief(w.client, *req);
    REQUIRE_FALSE(r.ec);
    CHECK(r.value.status == 200);
    const auto bodies = w.api.recent_bodies();
    REQUIRE(bodies.size() == 3);
    for (const auto& b : bodies) CHECK(b == R"({"n":1})");
}

TEST_CASE("the Authorization line is built once per token generation, exactly as the client sends it") {
    api_world w;
    auto req = w.client.prepare(http::verb::get, w.api.url("/a"));
    REQUIRE(req.has_value());
    for (int i = 0; i < 20; ++i) REQUIRE(send_brief(w.client, *req).value.status == 200);
    CHECK(req->authorization_builds() == 1);
    const std::string t1(w.source.try_get_token().value());
    w.api.revoke_all();
    auto r = send_brief(w.client, *req); // 401, one newer token, one resend
    REQUIRE_FALSE(r.ec);
    CHECK(r.value.status == 200);
    const std::string t2(w.source.try_get_token().value());
    CHECK(t1 != t2);
    CHECK(req->authorization_builds() == 2);
    CHECK(w.client.stats().resends_after_401 == 1);
    auto log = w.api.recent_authorizations();
    REQUIRE(log.size() == 16);
    CHECK(log[13] == "Bearer " + t1);
    CHECK(log[14] == "Bearer " + t1); // the 401
    CHECK(log[15] == "Bearer " + t2); // the resend
    // the full form of the same prepared request, from the same cache
    auto full = wait_for<http::response>([&](auto h) { w.client.async_send(*req, std::move(h)); });
    REQUIRE_FALSE(full.ec);
    CHECK(full.value.body() == R"({"ok":true})");
    CHECK(req->authorization_builds() == 2);
}

TEST_CASE("a 401 storm on one prepared request: every request succeeds after exactly one token request") {
    api_world w;
    auto req = w.client.prepare(http::verb::get, w.api.url("/storm"));
    REQUIRE(req.has_value());
    REQUIRE(send_brief(w.client, *req).value.status == 200);
    w.api.revoke_all();
    const int n = 2000;
    std::atomic<int> done{0}, ok{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
        callers.emplace_back([&] {
            for (int i = 0; i < n / 4; ++i)
                w.client.async_send_brief(*req, [&](error_code ec, http::brief_response r) {
                    if (!ec && r.status == 200) ++ok;
                    ++done;
                });
        });
    for (auto& t : callers) t.join();
    REQUIRE(test::eventually([&] { return done == n; }, 60s));
    CHECK(ok == n);
    CHECK(w.auth.token_requests() == 2);
    CHECK(w.auth.max_concurrent_requests() == 1);
    // each generation's line built once, whichever thread got there first (a lost race builds a
    // line that is used once and not cached: at most one per thread)
    CHECK(req->authorization_builds() >= 2);
    CHECK(req->authorization_builds() <= 2 + 4 + 2);
}

TEST_CASE("brief responses: status, body size, the 401 challenge and Retry-After, chunked or not") {
    struct shape {
        const char* name;
        std::string response;
        unsigned status;
        std::uint64_t body_size;
        std::string www_authenticate, retry_after;
    };
    const shape shapes[] = {
        {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 5, "", ""},
        {"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
         200, 5, "", ""},
        {"two challenges", "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"a\"\r\nWWW-Authenticate: Bearer "
                           "error=\"invalid_token\"\r\nContent-Length: 0\r\n\r\n",
         401, 0, "Basic realm=\"a\", Bearer error=\"invalid_token\"", ""},
        {"503 with Retry-After", "HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy", 503, 4, "", "7"},
        {"interim 100 and 103 first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                                      "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
         202, 2, "", ""},
        {"a challenge on a 200 is not kept", "HTTP/1.1 200 OK\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\n\r\n",
         200, 0, "", ""},
    };
    test::io_threads io(1);
    http::connection_pool pool(io.executor());
    for (const auto& s : shapes) {
        INFO(s.name);
        test::hostile_server server({s.response, ""});
        auto r = pool_brief(pool, prepared(server.url("/x"), {{"Authorization", "Bearer static"}}));
        REQUIRE_FALSE(r.ec);
        CHECK(r.value.status == s.status);
        CHECK(r.value.body_size == s.body_size);
        CHECK(r.value.www_authenticate == s.www_authenticate);
        CHECK(r.value.retry_after == s.retry_after);
        REQUIRE(server.requests().size() == 1);
        CHECK(server.requests()[0].find("\r\nAuthorization: Bearer static\r\n") != std::string::npos);
    }
}

TEST_CASE("brief responses are bounded like full ones: heads, chunk extensions, trailers, bodies, interims") {
    struct hostile {
        const char* name;
        test::hostile_server::script script;
        error_code expected;
    };
    const std::string huge_value(20 * 1024, 'h');
    const hostile cases[] = {
        {"a header over the limit", {"HTTP/1.1 200 OK\r\nX-Big: " + huge_value + "\r\n\r\n", ""}, errc::header_too_large},
        {"endless headers", {"HTTP/1.1 200 OK\r\n", "X-A: 1\r\n"}, errc::header_too_large},
        {"endless chunk extensions", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "1;ext=aaaaaaaa\r\nx\r\n"},
         errc::header_too_large},
        {"endless trailers", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "X-T: 1\r\n"},
         errc::header_too_large},
        {"endless interim responses", {"", "HTTP/1.1 100 Continue\r\n\r\n"}, errc::connection_closed},
        {"a body over the limit", {"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", std::string(4096, 'b')},
         errc::body_too_large},
        {"an endless chunked body", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "400\r\n" + std::string(1024, 'c') + "\r\n"},
         errc::body_too_large},
    };
    test::io_threads io(1);
    http::pool_options po;
    po.header_limit = 8 * 1024;
    po.body_limit = 64 * 1024;
    po.request_timeout = 20s;
    http::connection_pool pool(io.executor(), po);
    for (const auto& c : cases) {
        INFO(c.name);
        test::hostile_server server(c.script);
        auto r = pool_brief(pool, prepared(server.url("/x")));
        CHECK(r.ec == c.expected);
        CHECK(server.bytes_sent() < 64ull * 1024 * 1024); // stopped early, not after everything
    }
}

TEST_CASE("a brief response with unclean framing does not leave its connection for reuse") {
    test::io_threads io(1);
    testing::http_server server([](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        if (req.target() == "/te") {
            res.set(http::field::transfer_encoding, "gzip, chunked"); // a coding list, fine
            res.chunked(true);
        }
        res.body() = "x";
        co_return testing::reply::send;
    });
    http::connection_pool pool(io.executor());
    auto plain = prepared(server.base_url() + "/plain");
    for (int i = 0; i < 5; ++i) REQUIRE(pool_brief(pool, plain).value.status == 200);
    CHECK(pool.stats().connections_opened == 1); // keep-alive reuse with brief responses
    test::hostile_server nested({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n1\r\nx\r\n0\r\n\r\n", ""});
    auto r = pool_brief(pool, prepared(nested.url("/x")));
    // chunked not last: the body is read until the connection closes, never reused
    CHECK((r.ec || r.value.status == 200));
    CHECK(pool.stats().open_connections <= 1);
}

TEST_CASE("preparing refuses what could break the head, and plain http to a remote host") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    tokenflight::client c(io.executor(), source);
    const auto code = [&](auto r) { return r ? error_code{} : r.error(); };
    CHECK(code(c.prepare(http::verb::get, "::not a url::")) == errc::invalid_url);
    CHECK(code(c.prepare(http::verb::get, "http://api.example.com/x")) == errc::insecure_transport);
    CHECK(code(c.prepare(http::verb::get, "http://127.0.0.1:1/x", {{"Bad Name", "v"}})) == errc::invalid_header_name);
    CHECK(code(c.prepare(http::verb::get, "http://127.0.0.1:1/x", {{"X-Evil", "a\r\nX-Injected: 1"}})) ==
          errc::invalid_header_value);
    CHECK(code(c.prepare(http::verb::get, "http://127.0.0.1:1/x", {{"X-Nul", std::string("a\0b", 3)}})) ==
          errc::invalid_header_value);
    CHECK(code(c.prepare(http::verb::get, "https://api.example.com/x")) == error_code{});
    CHECK(auth.token_requests() == 0);
}

TEST_CASE("a token that would break the Authorization line is refused at the line, not sent") {
    // The token endpoint already refuses such tokens; the line's own check holds even if a
    // token got past it: an explicit scheme with a space cannot be configured (the client's
    // constructor refuses it), so the line is checked with what the cache holds.
    test::io_threads io(1);
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    token_source source(io.executor(), auth.client_credentials());
    client_options co;
    co.auth_scheme = "Bearer x"; // not a token
    CHECK_THROWS_AS(tokenflight::client(io.executor(), source, co), boost::system::system_error);
    CHECK(api.requests() == 0);
}

TEST_CASE("a cancelled prepared send completes with operation_aborted, and the request stays usable") {
    test::io_threads io(1);
    testing::http_server stall([](const http::request&, http::response&) -> asio::awaitable<testing::reply> {
        co_return testing::reply::stall; // reads the request, never answers
    });
    http::connection_pool pool(io.executor());
    auto req = prepared(stall.base_url() + "/x");
    asio::cancellation_signal signal;
    auto p = std::make_shared<std::promise<error_code>>();
    asio::post(io.executor(), [&] {
        pool.async_send_brief(req, {}, asio::bind_cancellation_slot(signal.slot(), [p](error_code ec, http::brief_response) {
                                  p->set_value(ec);
                              }));
    });
    REQUIRE(test::eventually([&] { return stall.requests() == 1; }));
    asio::post(io.executor(), [&] { signal.emit(asio::cancellation_type::terminal); });
    auto f = p->get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == asio::error::operation_aborted);
    test::hostile_server ok({"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ""});
    CHECK(pool_brief(pool, prepared(ok.url("/y"))).value.status == 200);
}

TEST_CASE("one prepared request through two clients: each sends its own source's token") {
    test::io_threads io(1);
    testing::fake_auth_server auth_a, auth_b;
    testing::fake_api_server api(auth_a); // accepts A's tokens only
    token_source source_a(io.executor(), auth_a.client_credentials());
    token_source source_b(io.executor(), auth_b.client_credentials());
    tokenflight::client a(io.executor(), source_a), b(io.executor(), source_b);
    auto req = a.prepare(http::verb::get, api.url("/shared"));
    REQUIRE(req.has_value());
    CHECK(send_brief(a, *req).value.status == 200);
    const auto rb = send_brief(b, *req); // generation 1 of another source: not A's cached line
    REQUIRE_FALSE(rb.ec);
    CHECK(rb.value.status == 401); // the API takes A's tokens only: B's were sent (and resent)
    CHECK(send_brief(a, *req).value.status == 200); // and back: A's line again
    const std::string ta(source_a.try_get_token().value());
    const auto log = api.recent_authorizations();
    REQUIRE(log.size() == 4); // A, B, B's resend with a newer B token, A
    CHECK(log[0] == "Bearer " + ta);
    for (int i : {1, 2}) {
        REQUIRE(log[i].starts_with("Bearer "));
        const auto token = log[i].substr(7);
        CHECK(auth_b.check(token) != testing::fake_auth_server::verdict::unknown); // B's own
        CHECK(auth_a.check(token) == testing::fake_auth_server::verdict::unknown);
    }
    CHECK(log[3] == "Bearer " + ta);
}

TEST_CASE("a client refuses prepared requests it must not send: empty, own Authorization, plain http afar") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    client_options co;
    co.default_headers = {{"Authorization", "Basic c3RhdGljOnNlY3JldA=="}}; // a default one: dropped
    tokenflight::client c(io.executor(), source, co);
    test::hostile_server server({"HTTP/1.1 204 No Content\r\n\r\n", ""});
    auto mine = c.prepare(http::verb::get, server.url("/x"));
    REQUIRE(mine.has_value());
    CHECK(mine->head_without_authorization().find("Authorization") == std::string_view::npos);
    CHECK(send_brief(c, *mine).value.status == 204);
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].find("Authorization: Basic") == std::string::npos);

    CHECK(send_brief(c, http::prepared_request{}).ec == asio::error::invalid_argument);
    auto own = prepared(server.url("/y"), {{"Authorization", "Bearer mine"}});
    CHECK(send_brief(c, own).ec == errc::invalid_header_name); // never two Authorization lines
    auto afar = prepared("http://api.example.com/z"); // made without the client's check
    CHECK(send_brief(c, afar).ec == errc::insecure_transport);
    CHECK(server.requests().size() == 1);

    http::connection_pool pool(io.executor());
    CHECK(pool_brief(pool, http::prepared_request{}).ec == asio::error::invalid_argument);
}

TEST_CASE("making a prepared request refuses framing fields and a body on TRACE, without throwing") {
    const auto code = [](auto r) { return r ? error_code{} : r.error(); };
    CHECK(code(http::make_prepared_request(http::verb::get, "http://127.0.0.1:1/", {{"Content-Length", "100"}})) ==
          errc::invalid_header_name);
    CHECK(code(http::make_prepared_request(http::verb::post, "http://127.0.0.1:1/", {{"transfer-encoding", "chunked"}},
                                          "body")) == errc::invalid_header_name);
    CHECK(code(http::make_prepared_request(http::verb::trace, "http://127.0.0.1:1/", {}, "body")) == errc::invalid_method);
    CHECK(code(http::make_prepared_request(http::verb::trace, "http://127.0.0.1:1/")) == error_code{});
}

TEST_CASE("a brief 401 whose challenges are long still says insufficient_scope: no refresh, no resend") {
    test::io_threads io(1);
    testing::fake_auth_server auth;
    token_source source(io.executor(), auth.client_credentials());
    tokenflight::client c(io.executor(), source);
    const std::string padding(3000, 'p');
    test::hostile_server server({"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"" + padding +
                                     "\"\r\nWWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"admin\"\r\n"
                                     "Content-Length: 0\r\n\r\n",
                                 ""});
    auto req = c.prepare(http::verb::get, server.url("/admin"));
    REQUIRE(req.has_value());
    const auto r = send_brief(c, *req);
    REQUIRE_FALSE(r.ec);
    CHECK(r.value.status == 401);
    CHECK(r.value.insufficient_scope);
    CHECK(r.value.www_authenticate.size() <= 1024);
    CHECK(c.stats().resends_after_401 == 0);
    CHECK(auth.token_requests() == 1);
    CHECK(server.requests().size() == 1);
}
