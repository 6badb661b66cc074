// Egress through a real proxy: tinyproxy (Debian), started here on 127.0.0.1 with a generated
// configuration; an https origin with a certificate made by the test is reached through a CONNECT
// tunnel, with TLS verified end to end with the origin. Also: a proxy that wants credentials, one
// that refuses CONNECT to the origin's port, and one that is down.
#include <tokenflight/client.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include "hostile_server.hpp"
#include "ports.hpp"
#include "support.hpp"
#include "temp_file.hpp"
#include "tls_fixture.hpp"

#include <tokenflight/testing/http_server.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <fstream>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using test::accepts;
using test::free_port;

// tinyproxy in the foreground on 127.0.0.1, stopped (SIGTERM, then waited for) on destruction.
class tinyproxy {
public:
    explicit tinyproxy(const std::string& extra_config = {}) : port_(free_port()) {
        config_ = std::make_unique<test::temp_file>("Port " + std::to_string(port_) +
                                                        "\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\n"
                                                        "LogLevel Critical\nAllow 127.0.0.1\n" +
                                                        extra_config,
                                                    "tokenflight-tinyproxy");
        std::string path = "/usr/bin/tinyproxy";
        REQUIRE_MESSAGE(::access(path.c_str(), X_OK) == 0, "tinyproxy is not installed (scripts/bootstrap.sh)");
        std::string d = "-d", c = "-c", conf = config_->path();
        char* argv[] = {path.data(), d.data(), c.data(), conf.data(), nullptr};
        REQUIRE(::posix_spawn(&pid_, path.c_str(), nullptr, nullptr, argv, environ) == 0);
        const bool up = test::eventually([&] { return accepts(port_); }, 10s);
        if (!up) stop();
        REQUIRE_MESSAGE(up, "tinyproxy did not listen within 10 s");
    }
    ~tinyproxy() { stop(); }
    tinyproxy(const tinyproxy&) = delete;
    tinyproxy& operator=(const tinyproxy&) = delete;

    std::string url(const std::string& userinfo = {}) const {
        return "http://" + (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" + std::to_string(port_);
    }

    /// Stops the proxy now: connections through it are refused from then on.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    std::uint16_t port_;
    std::unique_ptr<test::temp_file> config_;
    pid_t pid_ = -1;
};

// An https origin answering 200 to everything, with a certificate the test's CA signed.
struct tls_origin {
    test::tls_fixture f;
    testing::http_server server{[](const http::request&, http::response&) -> asio::awaitable<testing::reply> {
                                    co_return testing::reply::send;
                                },
                                {.tls = &f.server_ctx}};
    http::origin where() const { return {.tls = true, .host = "localhost", .port = server.port()}; }
};

http::pool_options through(const std::string& proxy_url, const test::tls_fixture& f) {
    http::pool_options o;
    o.tls = test::tls_fixture::trust(f.ca_file.path());
    o.proxy.from = http::proxy_options::source::fixed;
    o.proxy.url = proxy_url;
    o.connect_timeout = 5s;
    return o;
}

http::request get(std::string target) {
    http::request req{http::verb::get, target, 11};
    req.set(http::field::host, "localhost");
    return req;
}

} // namespace

TEST_CASE("proxy: https through a CONNECT tunnel, TLS verified with the origin, SNI and all") {
    tinyproxy proxy;
    test::tls_fixture f; // the origin's certificate: DNS:localhost, IP:127.0.0.1
    std::atomic<int> seen{0};
    testing::http_server origin(
        [&](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
            ++seen;
            res.body() = std::string(req.target());
            co_return testing::reply::send;
        },
        {.tls = &f.server_ctx});
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), through(proxy.url(), f));
    const http::origin to{.tls = true, .host = "localhost", .port = origin.port()};
    for (int i = 0; i < 3; ++i) {
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/via-proxy"), asio::as_tuple(asio::use_awaitable)));
        REQUIRE_MESSAGE(!ec, ec.message());
        CHECK(res.result_int() == 200);
        CHECK(res.body() == "/via-proxy");
    }
    CHECK(seen == 3);
    CHECK(origin.connections_accepted() == 1); // one tunnel, kept alive

    // Verification is with the origin: a CA that did not sign the origin's certificate fails,
    // through the same proxy.
    auto wrong = through(proxy.url(), f);
    wrong.tls = test::tls_fixture::trust(f.other_ca_file.path());
    http::connection_pool untrusting(io.executor(), wrong);
    auto [ec, res] = test::run(io.executor(), untrusting.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::tls_untrusted_certificate);

    // The route is the proxy's: without it, a new connection is refused (the origin is still up).
    proxy.stop();
    http::connection_pool after(io.executor(), through(proxy.url(), f));
    auto [ec2, res2] = test::run(io.executor(), after.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec2 == asio::error::connection_refused);
}

TEST_CASE("proxy: a token source and a client through the proxy, plain http origins forwarded") {
    tinyproxy proxy;
    testing::fake_auth_server auth;
    testing::fake_api_server api(auth);
    test::io_threads io(1);
    token_source_options so;
    so.proxy.from = http::proxy_options::source::fixed;
    so.proxy.url = proxy.url();
    token_source source(io.executor(), auth.client_credentials(), so);
    client_options co;
    co.pool.proxy = so.proxy;
    client cl(io.executor(), source, co);
    auto req = cl.prepare(http::verb::get, api.url("/data"));
    REQUIRE(req.has_value());
    for (int i = 0; i < 5; ++i) {
        auto [ec, res] = test::run(io.executor(), cl.async_send_brief(*req, asio::as_tuple(asio::use_awaitable)));
        REQUIRE_MESSAGE(!ec, ec.message());
        CHECK(res.status == 200);
    }
    CHECK(auth.token_requests() == 1);
    // Through the proxy: with it gone the request fails, though the API itself is still up.
    proxy.stop();
    auto [ec, res] = test::run(io.executor(), cl.async_send_brief(*req, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == condition::transient);
    CHECK(api.server().requests() == 5);
}

TEST_CASE("proxy: credentials from the proxy URL are sent; without them, or wrong, proxy_refused") {
    tinyproxy proxy("BasicAuth tf-user tf-pass\n");
    tls_origin origin;
    test::io_threads io(1);
    const auto& f = origin.f;
    const auto to = origin.where();
    struct row {
        std::string userinfo;
        bool ok;
    };
    for (const auto& r : {row{"tf-user:tf-pass", true}, row{"", false}, row{"tf-user:WRONG-proxy-pass", false}}) {
        CAPTURE(r.userinfo);
        http::connection_pool pool(io.executor(), through(proxy.url(r.userinfo), f));
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
        if (r.ok) {
            CHECK_FALSE(ec);
            CHECK(res.result_int() == 200);
        } else {
            CHECK(ec == errc::proxy_refused);
            CHECK(ec.message().find("WRONG-proxy-pass") == std::string::npos);
        }
    }
}

TEST_CASE("proxy: one that refuses CONNECT to the port, and one that is down: typed errors, no hang") {
    tinyproxy refusing("ConnectPort 443\n"); // the origin is not on 443
    tls_origin origin;
    test::io_threads io(1);
    const auto& f = origin.f;
    const auto to = origin.where();
    http::connection_pool refused(io.executor(), through(refusing.url(), f));
    auto [ec, res] = test::run(io.executor(), refused.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::proxy_refused);
    CHECK(origin.server.connections_accepted() == 0);

    http::connection_pool down(io.executor(), through("http://127.0.0.1:" + std::to_string(free_port()), f));
    auto [ec2, res2] = test::run(io.executor(), down.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec2 == asio::error::connection_refused);
    CHECK(ec2 == condition::transient);
}

TEST_CASE("proxy: plain http goes in absolute-form, so a proxy that tunnels only to 443 forwards it") {
    tinyproxy tunnels_443_only("ConnectPort 443\n");
    std::atomic<int> seen{0};
    testing::http_server origin([&](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        ++seen;
        res.body() = std::string(req.target());
        res.set("x-via", req["Via"]); // tinyproxy's mark: the request came through it
        co_return testing::reply::send;
    });
    test::io_threads io(1);
    http::pool_options o;
    o.proxy.from = http::proxy_options::source::fixed;
    o.proxy.url = tunnels_443_only.url();
    http::connection_pool pool(io.executor(), o);
    const http::origin to{.tls = false, .host = "127.0.0.1", .port = origin.port()};
    for (int i = 0; i < 3; ++i) {
        auto req = get("/plain?i=" + std::to_string(i));
        req.set(http::field::host, to.authority());
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, req, asio::as_tuple(asio::use_awaitable)));
        REQUIRE_MESSAGE(!ec, ec.message());
        CHECK(res.result_int() == 200);
        CHECK(res.body() == "/plain?i=" + std::to_string(i)); // the proxy passed the origin-form on
        CHECK(res["x-via"].find("tinyproxy") != std::string_view::npos);
    }
    CHECK(seen == 3);
}

TEST_CASE("proxy: the absolute-form request as sent, with the proxy credential; the origin's bytes untouched") {
    test::hostile_server proxy({"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "", 0ms, 64});
    test::io_threads io(1);
    http::pool_options o;
    o.proxy.from = http::proxy_options::source::fixed;
    o.proxy.url = "http://tf-user:tf-pass@127.0.0.1:" + std::to_string(proxy.port());
    http::connection_pool pool(io.executor(), o);
    const http::origin to{.tls = false, .host = "origin.test", .port = 8080};
    http::request req{http::verb::post, "/items?x=1", 11};
    req.set(http::field::host, "origin.test:8080");
    req.set(http::field::authorization, "Bearer tok");
    req.body() = "data";
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, req, asio::as_tuple(asio::use_awaitable)));
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(res.body() == "ok");
    const auto heads = proxy.requests();
    REQUIRE(heads.size() == 1);
    CHECK(heads[0].starts_with("POST http://origin.test:8080/items?x=1 HTTP/1.1\r\nProxy-Authorization: Basic " +
                               base64_encode("tf-user:tf-pass") + "\r\n"));
    CHECK(heads[0].find("\r\nHost: origin.test:8080\r\n") != std::string::npos);
    CHECK(heads[0].find("\r\nAuthorization: Bearer tok\r\n") != std::string::npos);
    CHECK(heads[0].ends_with("\r\n\r\n"));
}

// --- hostile proxies: raw bytes, not tinyproxy ---

TEST_CASE("proxy: what the CONNECT request says, and hostile answers to it as typed errors") {
    tls_origin origin;
    test::io_threads io(1);
    const auto& f = origin.f;
    const auto to = origin.where();
    const auto attempt = [&](const test::hostile_server& proxy, const std::string& userinfo = {}) {
        auto o = through("http://" + (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" +
                             std::to_string(proxy.port()),
                         f);
        o.connect_timeout = 1s;
        http::connection_pool pool(io.executor(), o);
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
        return ec;
    };

    SUBCASE("the request: authority-form with the port, Host, and the proxy credential as Basic") {
        test::hostile_server proxy({"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "", 0ms, 64});
        CHECK(attempt(proxy, "tf-user:tf-pass") == errc::proxy_refused);
        const auto heads = proxy.requests();
        REQUIRE(heads.size() == 1);
        const auto authority = "localhost:" + std::to_string(to.port);
        CHECK(heads[0] == "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
                              "\r\nProxy-Authorization: Basic " + base64_encode("tf-user:tf-pass") + "\r\n\r\n");
    }
    SUBCASE("a header that never ends: header_too_large, bounded by the header limit") {
        test::hostile_server proxy({"HTTP/1.1 200 OK\r\n", "X-Pad: aaaaaaaaaaaaaaaa\r\n", 0ms, 1 << 20});
        CHECK(attempt(proxy) == errc::header_too_large);
    }
    SUBCASE("a header that drips and never ends: connect_timeout") {
        test::hostile_server proxy({"HTTP/1.1 200 OK\r\n", "X: y\r\n", 50ms, 4096});
        CHECK(attempt(proxy) == errc::connect_timeout);
    }
    SUBCASE("bytes after a 200 before the client spoke: never a usable tunnel") {
        // Read with the head (one write on loopback: the usual case), they are proxy_refused;
        // read after it, they end the TLS handshake. Either way no request goes through.
        test::hostile_server proxy({"HTTP/1.1 200 OK\r\n\r\nSMUGGLED", "", 0ms, 64});
        CHECK(attempt(proxy));
    }
    SUBCASE("an answer that is not HTTP") {
        test::hostile_server proxy({"SSH-2.0-OpenSSH_9.2\r\n\r\n", "", 0ms, 64});
        CHECK(attempt(proxy) == errc::proxy_refused);
    }
    SUBCASE("407: proxy_refused, and the credential is not in the message") {
        test::hostile_server proxy(
            {"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n", "", 0ms,
             256});
        const auto ec = attempt(proxy, "tf-user:SECRET-proxy-pass");
        CHECK(ec == errc::proxy_refused);
        CHECK(ec.message().find("SECRET") == std::string::npos);
    }
    SUBCASE("a proxy that closes at once: a transient error, no hang") {
        test::hostile_server proxy({"", "", 0ms, 0});
        CHECK(attempt(proxy) == condition::transient);
    }
}
