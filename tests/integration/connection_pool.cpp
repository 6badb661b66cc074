#include <tokenflight/http/connection_pool.hpp>

#include "support.hpp"
#include "tls_fixture.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <mutex>

#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <optional>
#include <thread>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using testing::reply;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// One server that behaves according to the request target.
asio::awaitable<reply> routes(const http::request& req, http::response& res) {
    const auto t = req.target();
    res.set(http::field::content_type, "text/plain");
    if (t == "/chunked") {
        res.chunked(true);
        res.body() = std::string(5000, 'c');
        co_return reply::send;
    }
    if (t == "/close") {
        res.body() = "bye";
        co_return reply::send_and_close;
    }
    if (t == "/204") {
        res.result(http::status::no_content);
        co_return reply::send;
    }
    if (t == "/304") {
        res.result(http::status::not_modified);
        co_return reply::send;
    }
    if (t == "/big") {
        res.body() = std::string(10 * 1024 * 1024, 'b');
        co_return reply::send;
    }
    if (t == "/bighdr") {
        res.set("x-huge", std::string(32 * 1024, 'h'));
        co_return reply::send;
    }
    if (t == "/stall") co_return reply::stall;
    if (t == "/slow") {
        asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
        co_await timer.async_wait(tuple_awaitable);
    }
    if (t == "/echo") {
        res.body() = req.body();
        co_return reply::send;
    }
    res.body() = "hello";
    co_return reply::send;
}

http::request get(std::string target) { return {http::verb::get, target, 11}; }

http::origin origin_of(const testing::http_server& s) {
    return http::parse_url(s.base_url()).value().origin;
}

} // namespace

TEST_CASE("1,000 sequential requests with at most one connection open exactly one") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.max_connections_per_origin = 1;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    int ok = test::run(io.executor(), [&]() -> asio::awaitable<int> {
        int n = 0;
        for (int i = 0; i < 1000; ++i) {
            auto [ec, res] = co_await pool.async_send(to, get("/"), tuple_awaitable);
            if (!ec && res.result() == http::status::ok && res.body() == "hello") ++n;
        }
        co_return n;
    }());
    CHECK(ok == 1000);
    CHECK(server.connections_accepted() == 1);
    CHECK(pool.stats().connections_opened == 1);
    CHECK(pool.stats().connections_reused == 999);
}

TEST_CASE("5,000 concurrent requests never open more than 64 connections and all succeed") {
    test::io_threads io(2);
    testing::http_server server(routes, {.threads = 2});
    http::pool_options o;
    o.max_connections_per_origin = 64;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    std::atomic<int> ok{0}, done{0};
    for (int i = 0; i < 5000; ++i) {
        pool.async_send(to, get("/"), [&](error_code ec, http::response res) {
            if (!ec && res.result() == http::status::ok) ++ok;
            ++done;
        });
    }
    REQUIRE(test::eventually([&] { return done == 5000; }, 60s));
    CHECK(ok == 5000);
    CHECK(server.max_open_connections() <= 64);
    CHECK(server.connections_accepted() <= 64);
    CHECK(server.connections_accepted() > 1); // the load really spread over connections
}

TEST_CASE("an idle connection the server closed is replaced transparently") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::connection_pool pool(io.executor());
    const auto to = origin_of(server);
    auto first = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(std::get<0>(first));
    server.close_idle_connections();
    REQUIRE(test::eventually([&] { return server.open_connections() == 0; }));
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec);
    CHECK(res.body() == "hello");
    CHECK(server.connections_accepted() == 2);
}

TEST_CASE("idle connections are closed after the idle timeout, without further traffic") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.idle_timeout = 200ms;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    CHECK(pool.stats().open_connections == 1);
    CHECK(test::eventually([&] { return server.open_connections() == 0; }, 5s));
    CHECK(pool.stats().open_connections == 0);
    // and the pool goes on working
    auto [ec2, res2] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec2);
    CHECK(server.connections_accepted() == 2);
}

TEST_CASE("a POST on a broken reused connection is not silently resent, unless marked idempotent") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::connection_pool pool(io.executor());
    const auto to = origin_of(server);
    auto post = [] {
        http::request r{http::verb::post, "/echo", 11};
        r.body() = "payload";
        return r;
    };
    auto warm = test::run(io.executor(), pool.async_send(to, post(), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(std::get<0>(warm));
    const auto requests_before = server.requests();

    server.close_idle_connections();
    REQUIRE(test::eventually([&] { return server.open_connections() == 0; }));
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, post(), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::connection_closed);
    CHECK(server.requests() == requests_before); // nothing reached the server, nothing was resent
    CHECK(pool.stats().resends == 0);

    // warm a connection again, break it, and say the POST is safe to repeat
    auto warm2 = test::run(io.executor(), pool.async_send(to, post(), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(std::get<0>(warm2));
    server.close_idle_connections();
    REQUIRE(test::eventually([&] { return server.open_connections() == 0; }));
    http::send_options so;
    so.idempotent = true;
    auto [ec2, res2] = test::run(io.executor(), pool.async_send(to, post(), so, asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec2);
    CHECK(res2.body() == "payload");
    CHECK(pool.stats().resends == 1);
}

TEST_CASE("a server that never answers gives a timeout; the pool stays usable") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::connection_pool pool(io.executor());
    const auto to = origin_of(server);
    http::send_options so;
    so.timeout = 300ms;
    const auto start = clock::now();
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/stall"), so, asio::as_tuple(asio::use_awaitable)));
    const auto took = clock::now() - start;
    CHECK(ec == errc::request_timeout);
    CHECK(took >= 300ms);
    CHECK(took < 10s); // bounded: it did not hang
    auto [ec2, res2] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec2);
    CHECK(res2.body() == "hello");
}

TEST_CASE("body and header limits give limit errors; the pool stays usable") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.body_limit = 1024 * 1024;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/big"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::body_too_large);
    auto [header_ec, header_res] = test::run(io.executor(), pool.async_send(to, get("/bighdr"), asio::as_tuple(asio::use_awaitable)));
    CHECK(header_ec == errc::header_too_large);
    auto [ec2, res2] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec2);
    CHECK(res2.body() == "hello");
}

TEST_CASE("chunked, Connection: close, 204 and 304 responses") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.max_connections_per_origin = 1;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    test::run(io.executor(), [&]() -> asio::awaitable<void> {
        auto [e1, chunked] = co_await pool.async_send(to, get("/chunked"), tuple_awaitable);
        CHECK_FALSE(e1);
        CHECK(chunked.body() == std::string(5000, 'c'));
        auto [e2, no_content] = co_await pool.async_send(to, get("/204"), tuple_awaitable);
        CHECK_FALSE(e2);
        CHECK(no_content.result() == http::status::no_content);
        auto [e3, not_modified] = co_await pool.async_send(to, get("/304"), tuple_awaitable);
        CHECK_FALSE(e3);
        CHECK(not_modified.result() == http::status::not_modified);
        auto [e4, closing] = co_await pool.async_send(to, get("/close"), tuple_awaitable);
        CHECK_FALSE(e4);
        CHECK(closing.body() == "bye");
        auto [e5, after] = co_await pool.async_send(to, get("/"), tuple_awaitable);
        CHECK_FALSE(e5);
        CHECK(after.body() == "hello");
    }());
    // chunked, 204 and 304 kept the connection; "Connection: close" forced exactly one new one
    CHECK(server.connections_accepted() == 2);
}

TEST_CASE("requests beyond the connection limit queue, and time out in the queue") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.max_connections_per_origin = 1;
    o.queue_timeout = 100ms;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    std::atomic<int> done{0};
    error_code first, second;
    pool.async_send(to, get("/slow"), [&](error_code ec, http::response) { first = ec; ++done; });
    pool.async_send(to, get("/"), [&](error_code ec, http::response) { second = ec; ++done; });
    REQUIRE(test::eventually([&] { return done == 2; }));
    CHECK_FALSE(first);
    CHECK(second == errc::queue_timeout);
}

TEST_CASE("a cancelled request completes with the pool's operation_aborted, for each type, and the pool recovers") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::connection_pool pool(io.executor());
    const auto to = origin_of(server);
    // Sends /stall and emits `type` once the server has the request; the pool's answer, or
    // nothing after 3 s.
    const auto cancel_at_server = [&](asio::cancellation_type type, http::send_options so) {
        asio::cancellation_signal signal;
        auto p = std::make_shared<std::promise<error_code>>();
        const auto before = server.requests();
        asio::post(io.executor(), [&, p] {
            pool.async_send(to, get("/stall"), so,
                            asio::bind_cancellation_slot(signal.slot(), [p](error_code e, http::response) {
                                p->set_value(e);
                            }));
        });
        REQUIRE(test::eventually([&] { return server.requests() > before; }));
        asio::post(io.executor(), [&] { signal.emit(type); });
        auto f = p->get_future();
        return f.wait_for(3s) == std::future_status::ready ? std::optional<error_code>(f.get()) : std::nullopt;
    };
    for (const auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial}) {
        CAPTURE(static_cast<int>(type));
        CHECK(cancel_at_server(type, {}) == std::optional<error_code>(asio::error::operation_aborted));
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
        CHECK_FALSE(ec);
        CHECK(res.body() == "hello");
    }
    // and through a coroutine's awaitable operators: the losing branch is the pool's, cancelled
    using namespace asio::experimental::awaitable_operators;
    auto pool_result = test::run(io.executor(), [&]() -> asio::awaitable<std::optional<error_code>> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
        std::optional<error_code> seen;
        auto send = [&]() -> asio::awaitable<void> {
            auto [ec, res] = co_await pool.async_send(to, get("/stall"), tuple_awaitable);
            seen = ec; // the pool completed (cancelled) before the operator returned
        };
        co_await (send() || timer.async_wait(tuple_awaitable));
        co_return seen;
    }());
    REQUIRE(pool_result.has_value());
    CHECK(*pool_result == asio::error::operation_aborted);
    // Total cancellation promises no side effect: a request the server has cannot be taken back,
    // so it runs on, to its own end (here the 1 s deadline, not the cancellation).
    http::send_options short_deadline;
    short_deadline.timeout = 1s;
    CHECK(cancel_at_server(asio::cancellation_type::total, short_deadline) ==
          std::optional<error_code>(errc::request_timeout));
}

TEST_CASE("every cancellation type abandons a request still waiting for a connection") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.max_connections_per_origin = 1;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    std::promise<error_code> blocker_done;
    http::send_options blocker_opts;
    blocker_opts.timeout = 20s;
    pool.async_send(to, get("/stall"), blocker_opts, [&](error_code e, http::response) { blocker_done.set_value(e); });
    REQUIRE(test::eventually([&] { return server.requests() == 1; })); // the only connection is busy
    for (const auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                            asio::cancellation_type::total}) {
        CAPTURE(static_cast<int>(type));
        asio::cancellation_signal signal;
        std::promise<error_code> p;
        asio::post(io.executor(), [&] {
            pool.async_send(to, get("/"), asio::bind_cancellation_slot(signal.slot(), [&](error_code e, http::response) {
                                p.set_value(e);
                            }));
        });
        // queued behind the stalled request; the post below runs after the send was queued
        std::promise<void> queued;
        asio::post(io.executor(), [&] { queued.set_value(); });
        REQUIRE(queued.get_future().wait_for(10s) == std::future_status::ready);
        asio::post(io.executor(), [&] { signal.emit(type); });
        auto f = p.get_future();
        REQUIRE(f.wait_for(10s) == std::future_status::ready);
        CHECK(f.get() == asio::error::operation_aborted);
    }
    CHECK(server.requests() == 1); // none of them was sent
    pool.close();
    REQUIRE(blocker_done.get_future().wait_for(30s) == std::future_status::ready);
}


TEST_CASE("a closed pool fails new requests with errc::closed") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::connection_pool pool(io.executor());
    pool.close();
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server), get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::closed);
}

TEST_CASE("unreachable hosts fail with a connect error, not a hang") {
    test::io_threads io(1);
    http::connection_pool pool(io.executor());
    // a port that was just free: nothing listens there
    std::uint16_t port;
    {
        asio::io_context tmp;
        asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }
    auto [ec, res] = test::run(io.executor(), pool.async_send(http::origin{.tls = false, .host = "127.0.0.1", .port = port}, get("/"),
                                                              asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == asio::error::connection_refused);
    CHECK(is_transient(ec));
}

// --- TLS -------------------------------------------------------------------------------------

namespace {
using test::tls_fixture;

http::tls_options trust(const test::temp_file& ca_file, tls_fixture::system_cas system = tls_fixture::system_cas::ignored) {
    return tls_fixture::trust(ca_file.path(), system);
}
http::tls_options system_store_only() { return tls_fixture::trust("", tls_fixture::system_cas::trusted); }
http::tls_options no_verification() {
    http::tls_options t;
    t.verify_peer = false;
    return t;
}

error_code tls_get(test::io_threads& io, const http::origin& to, http::tls_options tls) {
    http::pool_options o;
    o.tls = std::move(tls);
    http::connection_pool pool(io.executor(), o);
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    if (!ec) CHECK(res.body() == "hello");
    return ec;
}
} // namespace

TEST_CASE("TLS: a trusted CA succeeds, an untrusted CA fails as untrusted, verification off succeeds") {
    tls_fixture f;
    testing::http_server server(routes, {.tls = &f.server_ctx});
    test::io_threads io(1);
    const auto to = origin_of(server);
    CHECK(to.tls);
    CHECK_FALSE(tls_get(io, to, trust(f.ca_file)));
    CHECK(tls_get(io, to, trust(f.other_ca_file, tls_fixture::system_cas::trusted)) == errc::tls_untrusted_certificate);
    CHECK(tls_get(io, to, system_store_only()) == errc::tls_untrusted_certificate);
    CHECK_FALSE(tls_get(io, to, no_verification()));
    // "localhost" is in the certificate too
    CHECK_FALSE(tls_get(io, http::origin{.tls = true, .host = "localhost", .port = to.port}, trust(f.ca_file)));
}

TEST_CASE("TLS: an expired or not yet valid certificate fails as expired") {
    for (const auto& [not_before, not_after] : {std::pair{-7200L, -3600L}, std::pair{3600L, 7200L}}) {
        tls_fixture f("DNS:localhost,IP:127.0.0.1", not_before, not_after);
        testing::http_server server(routes, {.tls = &f.server_ctx});
        test::io_threads io(1);
        CHECK(tls_get(io, origin_of(server), trust(f.ca_file)) == errc::tls_certificate_expired);
    }
}

namespace {
// Records the server name each ClientHello carried ("" when none).
std::mutex sni_mutex;
std::vector<std::string> sni_seen;
int record_sni(SSL* ssl, int*, void*) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    std::lock_guard l(sni_mutex);
    sni_seen.emplace_back(name ? name : "");
    return SSL_TLSEXT_ERR_OK;
}
} // namespace

TEST_CASE("TLS: host names are sent as SNI, IP literals never are (RFC 6066)") {
    tls_fixture f;
    SSL_CTX_set_tlsext_servername_callback(f.server_ctx.native_handle(), record_sni);
    testing::http_server server(routes, {.tls = &f.server_ctx});
    test::io_threads io(1);
    const auto to = origin_of(server);
    {
        std::lock_guard l(sni_mutex);
        sni_seen.clear();
    }
    CHECK_FALSE(tls_get(io, to, trust(f.ca_file)));                                   // 127.0.0.1
    CHECK_FALSE(tls_get(io, http::origin{.tls = true, .host = "localhost", .port = to.port}, trust(f.ca_file))); // a name
    std::lock_guard l(sni_mutex);
    REQUIRE(sni_seen.size() == 2);
    CHECK(sni_seen[0].empty());
    CHECK(sni_seen[1] == "localhost");
}

TEST_CASE("TLS: a certificate for another host name or address fails as a name mismatch") {
    tls_fixture f("DNS:other.test,IP:127.0.0.2");
    testing::http_server server(routes, {.tls = &f.server_ctx});
    test::io_threads io(1);
    const auto to = origin_of(server);
    CHECK(tls_get(io, to, trust(f.ca_file)) == errc::tls_name_mismatch); // 127.0.0.1
    CHECK(tls_get(io, http::origin{.tls = true, .host = "localhost", .port = to.port}, trust(f.ca_file)) == errc::tls_name_mismatch);
    CHECK_FALSE(tls_get(io, to, no_verification()));
    // a wildcard stands for one whole label: *.localhost does not cover localhost
    tls_fixture wild("DNS:*.localhost");
    testing::http_server wild_server(routes, {.tls = &wild.server_ctx});
    const auto wt = origin_of(wild_server);
    CHECK(tls_get(io, http::origin{.tls = true, .host = "localhost", .port = wt.port}, trust(wild.ca_file)) == errc::tls_name_mismatch);
}

TEST_CASE("TLS: many requests reuse the TLS connection") {
    tls_fixture f;
    testing::http_server server(routes, {.tls = &f.server_ctx});
    test::io_threads io(1);
    http::pool_options o;
    o.max_connections_per_origin = 1;
    o.tls = trust(f.ca_file);
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    int ok = test::run(io.executor(), [&]() -> asio::awaitable<int> {
        int n = 0;
        for (int i = 0; i < 100; ++i) {
            auto [ec, res] = co_await pool.async_send(to, get("/chunked"), tuple_awaitable);
            if (!ec && res.body().size() == 5000) ++n;
        }
        co_return n;
    }());
    CHECK(ok == 100);
    CHECK(server.connections_accepted() == 1);
}

namespace {
// A client certificate (extended key usage clientAuth) signed by the fixture's CA, and a server
// that requires one signed by that CA.
struct mutual_tls : tls_fixture {
    test::key_and_cert client = test::make_cert("client", "DNS:client.test", &ca, -3600, 24 * 3600, "clientAuth");
    mutual_tls() {
        server_ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        server_ctx.add_certificate_authority(asio::buffer(ca.cert_pem));
    }
    /// The hook that presents `client`.
    std::function<void(asio::ssl::context&)> present_certificate() const {
        return [cert = client](asio::ssl::context& ctx) {
            ctx.use_certificate_chain(asio::buffer(cert.cert_pem));
            ctx.use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
        };
    }
};
} // namespace

TEST_CASE("TLS: configure_context sets a client certificate, which a server requiring one accepts") {
    mutual_tls f;
    testing::http_server server(routes, {.tls = &f.server_ctx});
    test::io_threads io(1);
    const auto to = origin_of(server);
    auto with_cert = trust(f.ca_file);
    with_cert.configure_context = f.present_certificate();
    CHECK_FALSE(tls_get(io, to, with_cert));
    CHECK(server.requests() == 1);
    // A pool without the hook presents no certificate: the server refuses it.
    const error_code without = tls_get(io, to, trust(f.ca_file));
    CHECK(without);
    CHECK(server.requests() == 1); // nothing got through
}

TEST_CASE("TLS: configure_context runs once per pool, after the simple options, and can restrict versions") {
    tls_fixture f;
    SSL_CTX_set_max_proto_version(f.server_ctx.native_handle(), TLS1_2_VERSION); // a TLS 1.2 server
    testing::http_server server(routes, {.tls = &f.server_ctx});
    test::io_threads io(1);
    const auto to = origin_of(server);
    CHECK_FALSE(tls_get(io, to, trust(f.ca_file))); // TLS 1.2 is fine by default
    int calls = 0;
    long verify_mode_seen = -1;
    auto tls13_only = trust(f.ca_file);
    tls13_only.configure_context = [&](asio::ssl::context& ctx) {
        ++calls;
        verify_mode_seen = SSL_CTX_get_verify_mode(ctx.native_handle()); // applied before the hook
        SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
    };
    http::pool_options o;
    o.tls = tls13_only;
    http::connection_pool pool(io.executor(), o);
    CHECK(calls == 1);
    CHECK(verify_mode_seen == SSL_VERIFY_PEER);
    for (int i = 0; i < 2; ++i) { // each on a new connection: the handshake fails every time
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
        CHECK(ec.category() == asio::error::get_ssl_category());
        CHECK(ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    }
    CHECK(calls == 1);
}

TEST_CASE("TLS: an exception from configure_context propagates from the pool's constructor") {
    test::io_threads io(1);
    http::pool_options o;
    o.tls.configure_context = [](asio::ssl::context& ctx) { ctx.use_certificate_chain_file("/nonexistent/client.pem"); };
    CHECK_THROWS_AS(http::connection_pool(io.executor(), o), boost::system::system_error);
    o.tls.configure_context = [](asio::ssl::context&) { throw std::runtime_error("no key"); };
    CHECK_THROWS_WITH_AS(http::connection_pool(io.executor(), o), "no key", std::runtime_error);
}

// Found by fuzz/http_response (inputs kept under fuzz/regressions/http_response).
TEST_CASE("interim 1xx responses are skipped; a body ended by EOF ends the connection") {
    // A raw server: answers "100 Continue" then the response, with a body delimited by closing.
    asio::io_context sctx;
    asio::ip::tcp::acceptor acceptor(sctx, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();
    std::atomic<int> accepted{0};
    std::thread server([&] {
        for (int i = 0; i < 2; ++i) {
            asio::ip::tcp::socket s(sctx);
            acceptor.accept(s);
            ++accepted;
            char buf[4096];
            error_code ec;
            s.read_some(asio::buffer(buf), ec);
            const std::string reply = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil-eof";
            asio::write(s, asio::buffer(reply), ec);
            s.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
        }
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor());
    const http::origin to{.tls = false, .host = "127.0.0.1", .port = port};
    for (int i = 0; i < 2; ++i) {
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
        REQUIRE_FALSE(ec);
        CHECK(res.result() == http::status::ok);
        CHECK(res.body() == "until-eof");
    }
    server.join();
    CHECK(accepted == 2); // the first connection was not reused: its body ended with the stream
    CHECK(pool.stats().resends == 0);
}

TEST_CASE("a connection with bytes left after the response is not reused") {
    // A 204 followed by stray bytes: they must never be read as the next caller's response.
    asio::io_context sctx;
    asio::ip::tcp::acceptor acceptor(sctx, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();
    std::thread server([&] {
        asio::ip::tcp::socket first(sctx), second(sctx);
        char buf[4096];
        error_code ec;
        acceptor.accept(first);
        first.read_some(asio::buffer(buf), ec);
        asio::write(first, asio::buffer(std::string("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")), ec);
        acceptor.accept(second);
        second.read_some(asio::buffer(buf), ec);
        asio::write(second, asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")), ec);
        second.read_some(asio::buffer(buf), ec); // until the client closes
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor());
    const http::origin to{.tls = false, .host = "127.0.0.1", .port = port};
    auto [e1, r1] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(e1);
    CHECK(r1.result() == http::status::no_content);
    auto [e2, r2] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(e2);
    CHECK(r2.body() == "real");
    pool.close();
    server.join();
}

// A helper that gives up must not leave the io threads running handlers that refer to the test's
// locals while the failure unwinds them: test::run stops the threads before it fails the test.
// This test fails on purpose (should_fail); before that fix it was a heap-use-after-free.
TEST_CASE("a helper's failed wait stops the io threads before the test's locals go" * doctest::should_fail()) {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::connection_pool pool(io.executor());
    std::vector<int> completions; // touched by the coroutine if it ever resumes
    (void)test::run(
        io.executor(),
        [&]() -> asio::awaitable<int> {
            auto [ec, res] = co_await pool.async_send(origin_of(server), get("/stall"), tuple_awaitable);
            completions.push_back(1);
            co_return 0;
        }(),
        1s);
}

// Asio destroys, without invoking, the handlers of operations it will never complete when an
// io_context is destroyed; the pool's requests are objects it owns through raw links (a
// connection's current request, the origin's queue), so it must do the same for them. One
// request in flight on the only connection, one queued behind it: neither completes, both
// handlers are destroyed (each holds a shared_ptr the test watches), none leaks.
TEST_CASE("requests in flight or queued when the io_context is destroyed are destroyed with their handlers") {
    testing::http_server server(routes);
    auto in_flight = std::make_shared<int>(1);
    auto queued = std::make_shared<int>(2);
    const std::weak_ptr<int> in_flight_seen = in_flight, queued_seen = queued;
    int completions = 0;
    {
        asio::io_context ioc(1);
        http::pool_options o;
        o.max_connections_per_origin = 1;
        {
            http::connection_pool pool(ioc.get_executor(), o);
            pool.async_send(origin_of(server), get("/stall"),
                            [keep = std::move(in_flight), &completions](error_code, http::response) { ++completions; });
            pool.async_send(origin_of(server), get("/"),
                            [keep = std::move(queued), &completions](error_code, http::response) { ++completions; });
            // Until the server holds the first request (bounded): it is in flight, the second queued.
            const auto give_up = std::chrono::steady_clock::now() + 10s;
            while (server.requests() < 1 && std::chrono::steady_clock::now() < give_up) ioc.run_one_for(10ms);
            REQUIRE(server.requests() == 1);
            CHECK(pool.stats().open_connections == 1);
        } // closing the pool posts the queued request's completion; it never runs
    } // the io_context is destroyed with both requests pending
    CHECK(completions == 0);
    CHECK(in_flight_seen.expired());
    CHECK(queued_seen.expired());
}

// --- closing releases io_context::run() ------------------------------------------------------

namespace {
// Runs `ioc` on this thread until run() returns by itself, and says whether it did. A watchdog
// thread, far away in time (`bound`), stops the context if it still runs then: a regression fails
// the test instead of hanging it. Nothing here depends on how fast run() returns.
bool run_returns_by_itself(asio::io_context& ioc, std::chrono::seconds bound = 30s) {
    std::mutex m;
    std::condition_variable cv;
    bool returned = false, stopped = false;
    std::thread watchdog([&] {
        std::unique_lock l(m);
        if (!cv.wait_for(l, bound, [&] { return returned; })) {
            stopped = true;
            ioc.stop();
        }
    });
    ioc.run();
    {
        std::lock_guard l(m);
        returned = true;
    }
    cv.notify_one();
    watchdog.join();
    return !stopped;
}

// Sends `n` GET `target` at once (each opens a connection) and runs `ioc` until they completed
// (bounded), then runs every handler that is ready: the connections are parked and the idle
// sweeper waits on its timer. The first error, if any.
error_code send_and_settle(asio::io_context& ioc, http::connection_pool& pool, const http::origin& to,
                           const std::string& target, int n = 1) {
    int done = 0;
    error_code first;
    for (int i = 0; i < n; ++i)
        pool.async_send(to, get(target), [&](error_code ec, http::response) {
            if (ec && !first) first = ec;
            ++done;
        });
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (done < n && std::chrono::steady_clock::now() < give_up) ioc.run_one_for(10ms);
    ioc.poll();
    REQUIRE(done == n);
    return first;
}

http::pool_options idle_for_an_hour() {
    http::pool_options o;
    o.idle_timeout = 1h; // the sweeper's next look is half an hour away
    return o;
}
} // namespace

TEST_CASE("close() lets io_context::run() return with an idle keep-alive connection and a 1 h idle timeout") {
    testing::http_server server(routes);
    asio::io_context ioc;
    http::connection_pool pool(ioc.get_executor(), idle_for_an_hour());
    CHECK_FALSE(send_and_settle(ioc, pool, origin_of(server), "/"));
    REQUIRE(pool.stats().open_connections == 1); // idle, kept alive
    pool.close();
    CHECK(run_returns_by_itself(ioc));
    CHECK(pool.stats().open_connections == 0);
    CHECK(test::eventually([&] { return server.open_connections() == 0; })); // really closed
}

TEST_CASE("destroying the pool lets io_context::run() return with an idle keep-alive connection") {
    testing::http_server server(routes);
    asio::io_context ioc;
    auto pool = std::make_unique<http::connection_pool>(ioc.get_executor(), idle_for_an_hour());
    CHECK_FALSE(send_and_settle(ioc, *pool, origin_of(server), "/"));
    REQUIRE(pool->stats().open_connections == 1);
    pool.reset();
    CHECK(run_returns_by_itself(ioc));
    CHECK(test::eventually([&] { return server.open_connections() == 0; }));
}

TEST_CASE("after close(), a request in flight finishes, then io_context::run() returns") {
    // "/gate" answers only once the test opens the gate: in flight for as long as the test says.
    std::atomic<bool> gate_open{false};
    testing::http_server server([&](const http::request& req, http::response& res) -> asio::awaitable<reply> {
        if (req.target() == "/gate") {
            asio::steady_timer t(co_await asio::this_coro::executor);
            while (!gate_open) {
                t.expires_after(5ms);
                co_await t.async_wait(tuple_awaitable);
            }
        }
        res.body() = "hello";
        co_return reply::send;
    });
    asio::io_context ioc;
    http::connection_pool pool(ioc.get_executor(), idle_for_an_hour());
    const auto to = origin_of(server);
    CHECK_FALSE(send_and_settle(ioc, pool, to, "/", 2)); // two idle connections: one stays idle
    REQUIRE(pool.stats().open_connections == 2);
    std::optional<error_code> gated;
    std::string body;
    pool.async_send(to, get("/gate"), [&](error_code ec, http::response res) {
        gated = ec;
        body = res.body();
    });
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (server.requests() < 3 && std::chrono::steady_clock::now() < give_up) ioc.run_one_for(10ms);
    REQUIRE(server.requests() == 3); // at the server: in flight until the gate opens
    REQUIRE_FALSE(gated.has_value());
    pool.close();
    ioc.poll(); // the idle connection closes; the request in flight goes on
    CHECK_FALSE(gated.has_value());
    CHECK(pool.stats().open_connections == 1);
    gate_open = true;
    CHECK(run_returns_by_itself(ioc));
    REQUIRE(gated.has_value());
    CHECK_FALSE(*gated); // finished normally, not aborted by close()
    CHECK(body == "hello");
    CHECK(pool.stats().open_connections == 0);
}

// --- latency ---------------------------------------------------------------------------------

TEST_CASE("latency: one value per completed request, failures included") {
    test::io_threads io(2);
    testing::http_server server(routes, {.threads = 2});
    http::pool_options o;
    o.max_connections_per_origin = 4; // some requests queue
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    CHECK(pool.stats().latency.total() == 0);
    CHECK(pool.stats().latency.percentile(0.5) == clock::duration::zero());
    std::atomic<int> done{0}, ok{0};
    for (int i = 0; i < 200; ++i)
        pool.async_send(to, get("/"), [&](error_code ec, http::response) {
            if (!ec) ++ok;
            ++done;
        });
    REQUIRE(test::eventually([&] { return done == 200; }, 60s));
    CHECK(ok == 200);
    auto s = pool.stats();
    CHECK(s.latency.total() == 200);
    CHECK(s.latency.total() == s.requests);
    CHECK(s.latency.percentile(0.5) > clock::duration::zero());
    CHECK(s.latency.percentile(0.5) <= s.latency.percentile(0.99));
    // A request that times out is recorded too, with at least its timeout.
    http::send_options so;
    so.timeout = 250ms;
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/stall"), so, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::request_timeout);
    s = pool.stats();
    CHECK(s.latency.total() == 201);
    CHECK(s.latency.percentile(1.0) > 250ms);
}

TEST_CASE("latency: requests that fail without a connection are recorded too") {
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.max_connections_per_origin = 1;
    o.queue_timeout = 100ms;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    std::atomic<int> done{0};
    error_code stalled, queued;
    http::send_options so;
    so.timeout = 20s;
    pool.async_send(to, get("/stall"), so, [&](error_code ec, http::response) { stalled = ec; ++done; });
    REQUIRE(test::eventually([&] { return server.requests() == 1; })); // the only connection is busy
    pool.async_send(to, get("/"), [&](error_code ec, http::response) { queued = ec; ++done; });
    REQUIRE(test::eventually([&] { return done == 1; }));
    CHECK(queued == errc::queue_timeout);
    CHECK(pool.stats().latency.total() == 1);
    CHECK(pool.stats().latency.percentile(1.0) > 100ms);
    pool.close(); // the stalled request stays in flight until its deadline, or the server stops
    server.stop();
    REQUIRE(test::eventually([&] { return done == 2; }, 30s));
    CHECK(stalled);
    CHECK(pool.stats().latency.total() == 2);
    // refused by a closed pool: recorded as well
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::closed);
    CHECK(pool.stats().latency.total() == 3);
    CHECK(pool.stats().requests == 3);
}

// --- events ----------------------------------------------------------------------------------

namespace {
// What a test keeps of each pool_event (the event's pointers are valid during the call only).
struct seen_event {
    http::pool_event_kind kind;
    std::optional<http::origin> to;
    std::uint64_t connection;
    error_code ec;
    unsigned status;
    clock::duration elapsed;
};

// Records the events of a pool, from any thread.
class event_log {
public:
    std::function<void(const http::pool_event&)> hook() {
        return [this](const http::pool_event& e) {
            std::lock_guard l(mutex_);
            events_.push_back({e.kind, e.to ? std::optional<http::origin>(*e.to) : std::nullopt, e.connection, e.ec,
                               e.status, e.elapsed});
        };
    }
    std::vector<seen_event> events() const {
        std::lock_guard l(mutex_);
        return events_;
    }
    std::vector<http::pool_event_kind> kinds() const {
        std::vector<http::pool_event_kind> k;
        for (const auto& e : events()) k.push_back(e.kind);
        return k;
    }
    bool has(http::pool_event_kind kind, error_code ec) const {
        for (const auto& e : events())
            if (e.kind == kind && e.ec == ec) return true;
        return false;
    }
    std::size_t count(http::pool_event_kind kind) const {
        std::size_t n = 0;
        for (const auto& e : events()) n += e.kind == kind;
        return n;
    }

private:
    mutable std::mutex mutex_;
    std::vector<seen_event> events_;
};

using ev = http::pool_event_kind;
} // namespace

TEST_CASE("events: two requests on one keep-alive connection, then close()") {
    event_log log; // first: it outlives the io threads that call the hook
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.on_event = log.hook();
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    for (int i = 0; i < 2; ++i) {
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
        REQUIRE_FALSE(ec);
    }
    CHECK(log.kinds() == std::vector<ev>{ev::connection_opened, ev::request_sent, ev::response_received,
                                         ev::connection_reused, ev::request_sent, ev::response_received});
    CHECK(log.count(ev::connection_opened) == 1);
    CHECK(log.count(ev::connection_reused) == 1);
    CHECK(log.count(ev::request_sent) == 2);
    CHECK(log.count(ev::response_received) == 2);
    for (const auto& e : log.events()) {
        CHECK(e.to == to);
        CHECK(e.connection == 1);
        CHECK_FALSE(e.ec);
        if (e.kind == ev::response_received) {
            CHECK(e.status == 200);
            CHECK(e.elapsed > clock::duration::zero());
        }
    }
    pool.close(); // the idle connection closes, because the pool did
    REQUIRE(test::eventually([&] { return log.count(ev::connection_closed) == 1; }));
    const auto closed = log.events().back();
    CHECK(closed.kind == ev::connection_closed);
    CHECK(closed.connection == 1);
    CHECK(closed.ec == errc::closed);
}

TEST_CASE("events: a server's close, announced or not, is a connection_closed") {
    event_log log; // first: it outlives the io threads that call the hook
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.on_event = log.hook();
    o.max_connections_per_origin = 1;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    const auto send = [&](const char* target) {
        auto [ec, res] = test::run(io.executor(), pool.async_send(to, get(target), asio::as_tuple(asio::use_awaitable)));
        return ec;
    };
    // "Connection: close": the response arrives, then the connection closes without an error.
    REQUIRE_FALSE(send("/close"));
    CHECK(log.kinds() == std::vector<ev>{ev::connection_opened, ev::request_sent, ev::response_received,
                                         ev::connection_closed});
    CHECK_FALSE(log.events().back().ec);
    CHECK(log.events().back().connection == 1);

    // Closed by the server while idle: found out when reused, and the request is resent on a new one.
    REQUIRE_FALSE(send("/"));
    server.close_idle_connections();
    REQUIRE(test::eventually([&] { return server.open_connections() == 0; }));
    const auto before = log.events().size();
    REQUIRE_FALSE(send("/"));
    auto events = log.events();
    events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(before));
    std::vector<seen_event> closes;
    for (const auto& e : events)
        if (e.kind == ev::connection_closed) closes.push_back(e);
    REQUIRE(closes.size() == 1);
    CHECK(closes[0].connection == 2);
    CHECK(closes[0].ec == errc::connection_closed);
    REQUIRE(events.size() >= 5);
    CHECK(events.front().kind == ev::connection_reused);
    CHECK(events.front().connection == 2);
    // then the resend: a third connection, one send, one response
    const std::vector<ev> tail{ev::connection_opened, ev::request_sent, ev::response_received};
    std::vector<ev> last;
    for (auto it = events.end() - 3; it != events.end(); ++it) {
        last.push_back(it->kind);
        CHECK(it->connection == 3);
    }
    CHECK(last == tail);
    CHECK(pool.stats().resends == 1);
}

TEST_CASE("events: failures are reported with their error; a throwing hook changes nothing") {
    std::atomic<int> calls{0}; // first: they outlive the io threads that call the hook
    event_log log;
    test::io_threads io(1);
    testing::http_server server(routes);
    http::pool_options o;
    o.on_event = [&, record = log.hook()](const http::pool_event& e) {
        record(e);
        ++calls;
        throw std::runtime_error("a hook that fails");
    };
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server);
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec);
    CHECK(res.body() == "hello");
    CHECK(calls == 3); // opened, sent, response: each threw
    // A timeout on the connection: request_failed, and the connection it closed.
    http::send_options so;
    so.timeout = 200ms;
    auto [tec, tres] = test::run(io.executor(), pool.async_send(to, get("/stall"), so, asio::as_tuple(asio::use_awaitable)));
    CHECK(tec == errc::request_timeout);
    auto events = log.events();
    REQUIRE(events.size() >= 2);
    CHECK(events[events.size() - 2].kind == ev::connection_closed);
    CHECK(events[events.size() - 2].ec == errc::request_timeout);
    CHECK(events.back().kind == ev::request_failed);
    CHECK(events.back().ec == errc::request_timeout);
    CHECK(events.back().elapsed >= 200ms);
    // A bad header: refused before it reaches a connection, reported all the same.
    auto bad = get("/");
    bad.set("x-bad", "a\rb");
    auto [bec, bres] = test::run(io.executor(), pool.async_send(to, bad, asio::as_tuple(asio::use_awaitable)));
    CHECK(bec == errc::invalid_header_value);
    REQUIRE(test::eventually([&] { return log.events().back().ec == errc::invalid_header_value; }));
    CHECK(log.events().back().kind == ev::request_failed);
    CHECK(log.events().back().to == to);
    CHECK(log.events().back().connection == 0);
    // A closed pool refuses at once.
    pool.close();
    auto [cec, cres] = test::run(io.executor(), pool.async_send(to, get("/"), asio::as_tuple(asio::use_awaitable)));
    CHECK(cec == errc::closed);
    REQUIRE(test::eventually([&] { return log.has(ev::request_failed, errc::closed); }));
}
