// One Redis connection over tokenflight's Asio socket, against a real redis-server started by
// the test and against peers that misbehave: pipelines, AUTH (default and ACL users), SELECT,
// deadlines, garbage and endless replies.
#include "redis/connection.hpp"
#include "redis/error.hpp"

#include "redis_server.hpp"
#include "support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using redis::reply;

namespace {

redis::endpoint at(const std::string& url) {
    auto e = redis::parse_redis_url(url);
    REQUIRE(e.has_value());
    return *e;
}

// A peer on 127.0.0.1 that reads what comes and answers each read with `answer` (nothing:
// silence), forever.
class fake_peer {
public:
    explicit fake_peer(std::string answer) : answer_(std::move(answer)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
        asio::co_spawn(ioc_, accept(), asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~fake_peer() {
        ioc_.stop();
        thread_.join();
    }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }

private:
    asio::awaitable<void> accept() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(ioc_, serve(std::move(socket)), asio::detached);
        }
    }
    asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
        char buf[4096];
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            if (answer_.empty()) continue;
            auto [wec, w] = co_await asio::async_write(socket, asio::buffer(answer_), asio::as_tuple(asio::use_awaitable));
            if (wec) co_return;
        }
    }
    std::string answer_;
    asio::io_context ioc_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread thread_;
};

} // namespace

TEST_CASE("a pipeline against a real redis-server: one reply per command, values binary-safe") {
    test::redis_server server;
    test::io_threads io;
    redis::connection c(io.executor(), at(server.url()), {.timeout = 2s});
    const std::string value("a\r\nb\0c", 6);
    redis::pipeline p;
    p.add({"SET", "k", value, "NX", "PX", "60000"}).add({"SET", "k", "other", "NX"}).add({"GET", "k"});
    p.add({"INCR", "k"}).add({"GET", "missing"});
    const auto replies = test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<std::vector<reply>>> {
        if (auto ec = co_await c.connect()) co_return ec;
        co_return co_await c.exec(p);
    }());
    REQUIRE(replies.has_value());
    REQUIRE(replies->size() == 5);
    CHECK((*replies)[0].text == "OK");
    CHECK((*replies)[1].is_nil()); // NX: already set
    CHECK((*replies)[2].text == std::string("a\r\nb\0c", 6));
    CHECK((*replies)[3].is_error()); // a Redis error is a reply
    CHECK((*replies)[4].is_nil());
    CHECK(c.is_open());
}

TEST_CASE("AUTH: the default user's password, an ACL user, a wrong password, none") {
    test::redis_server server({"--requirepass", "default-pw"});
    test::io_threads io;
    // Pipelines are built before the coroutines: GCC 12 miscompiles braced lists in a co_await.
    redis::pipeline ping_command;
    ping_command.add({"PING"});
    const auto ping = [&](const std::string& url) {
        redis::connection c(io.executor(), at(url), {.timeout = 2s});
        return test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<reply>> {
            if (auto ec = co_await c.connect()) co_return ec;
            auto r = co_await c.exec(ping_command);
            if (!r) co_return r.error();
            co_return (*r)[0];
        }());
    };
    auto ok = ping(server.url(":default-pw"));
    REQUIRE(ok.has_value());
    CHECK(ok->text == "PONG");
    CHECK(ping(server.url(":wrong-pw")).error() == redis::redis_errc::auth_refused);
    auto none = ping(server.url());
    REQUIRE(none.has_value());
    CHECK(none->is_error()); // NOAUTH
    CHECK(none->text.starts_with("NOAUTH"));

    // An ACL user, made through a connection as the default user.
    redis::connection admin(io.executor(), at(server.url(":default-pw")), {.timeout = 2s});
    redis::pipeline make_user;
    make_user.add({"ACL", "SETUSER", "fleet", "on", ">fleet-pw", "~*", "&*", "+@all"});
    auto made = test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<std::vector<reply>>> {
        if (auto ec = co_await admin.connect()) co_return ec;
        co_return co_await admin.exec(make_user);
    }());
    REQUIRE(made.has_value());
    CHECK((*made)[0].text == "OK");
    auto fleet = ping(server.url("fleet:fleet-pw"));
    REQUIRE(fleet.has_value());
    CHECK(fleet->text == "PONG");
    CHECK(ping(server.url("fleet:default-pw")).error() == redis::redis_errc::auth_refused);
}

TEST_CASE("SELECT: a database of its own") {
    test::redis_server server;
    test::io_threads io;
    redis::pipeline set, get;
    set.add({"SET", "db-key", "here"});
    get.add({"GET", "db-key"});
    const auto get_after_set = [&](int set_db, int get_db) {
        redis::connection a(io.executor(), at(server.url("", set_db)), {.timeout = 2s});
        redis::connection b(io.executor(), at(server.url("", get_db)), {.timeout = 2s});
        return test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<reply>> {
            if (auto ec = co_await a.connect()) co_return ec;
            if (auto ec = co_await b.connect()) co_return ec;
            auto stored = co_await a.exec(set);
            if (!stored) co_return stored.error();
            auto got = co_await b.exec(get);
            if (!got) co_return got.error();
            co_return (*got)[0];
        }());
    };
    auto same = get_after_set(3, 3);
    REQUIRE(same.has_value());
    CHECK(same->text == "here");
    auto other = get_after_set(5, 0);
    REQUIRE(other.has_value());
    CHECK(other->is_nil());
}

TEST_CASE("misbehaving peers: silence, garbage and an endless reply end in typed errors, the connection closed") {
    test::io_threads io;
    struct peer_case {
        const char* what;
        std::string answer;
        errc expected;
    };
    const std::string endless = "$999999999\r\n" + std::string(64 * 1024, 'x');
    for (const auto& pc : {peer_case{"silence", "", errc::request_timeout},
                           peer_case{"an HTTP answer", "HTTP/1.1 400 Bad Request\r\n\r\n", errc::malformed_response},
                           peer_case{"a reply past the limit", endless, errc::body_too_large}}) {
        INFO(pc.what);
        fake_peer peer(pc.answer);
        // A connection deadline no machine misses, so that the reply's errors are what is tested.
        redis::connection c(io.executor(), at(peer.url()),
                            {.timeout = 300ms, .connect_timeout = 10s, .max_reply_bytes = 16 * 1024});
        const auto started = std::chrono::steady_clock::now();
        redis::pipeline get;
        get.add({"GET", "k"});
        auto r = test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<std::vector<reply>>> {
            if (auto ec = co_await c.connect()) co_return ec;
            co_return co_await c.exec(get);
        }());
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == pc.expected);
        CHECK_FALSE(c.is_open());
        // Bounded: silence ends at the deadline, not later (a generous bound, never a tight one).
        CHECK(std::chrono::steady_clock::now() - started < 10s);
    }
}

TEST_CASE("no server: connecting fails with the transport's error, at once") {
    test::io_threads io;
    const std::uint16_t closed_port = test::free_port();
    redis::connection c(io.executor(), at("redis://127.0.0.1:" + std::to_string(closed_port)), {.timeout = 2s});
    const auto ec = test::run(io.executor(), c.connect());
    CHECK(ec == asio::error::connection_refused);
    CHECK_FALSE(c.is_open());
}

TEST_CASE("rediss://: TLS to a real redis-server, verified against the test's CA; a wrong CA or name fails") {
    test::tls_redis_server tls_server;
    const auto& server = tls_server.server;
    const auto& ca = tls_server.ca;
    const auto other_ca = test::make_cert("another CA", "", nullptr);
    test::io_threads io;
    const auto context = [](const std::string& trusted_pem) {
        auto c = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        c->set_verify_mode(asio::ssl::verify_peer);
        c->add_certificate_authority(asio::buffer(trusted_pem));
        return c;
    };
    redis::pipeline ping;
    ping.add({"PING"});
    const auto ping_over = [&](const std::string& url, std::shared_ptr<asio::ssl::context> tls) {
        redis::connection c(io.executor(), at(url), {.timeout = 5s, .tls = std::move(tls)});
        return test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<reply>> {
            if (auto ec = co_await c.connect()) co_return ec;
            auto r = co_await c.exec(ping);
            if (!r) co_return r.error();
            co_return (*r)[0];
        }());
    };
    auto ok = ping_over(server.url(), context(ca.cert_pem));
    REQUIRE_MESSAGE(ok.has_value(), ok.error().message());
    CHECK(ok->text == "PONG");
    CHECK_FALSE(ping_over(server.url(), context(other_ca.cert_pem)).has_value());
    // The certificate names 127.0.0.1 only: "localhost" is refused by the name check.
    const auto by_name = "rediss://localhost:" + std::to_string(server.port());
    CHECK_FALSE(ping_over(by_name, context(ca.cert_pem)).has_value());
    CHECK(ping_over(server.url(), nullptr).error() == redis::redis_errc::tls_unsupported);
}
