// The pool's HTTP/2 transport (issue 19) against real servers: nginx (h2 by ALPN over TLS, an
// HTTP/1.1-only TLS port, h2c), and nghttp2's server session on a socket, scripted to be hostile.
// Every test counts what the servers saw; none depends on timing beyond bounded deadlines.
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/http/url.hpp>

#include "h2_peer.hpp"
#include "nginx_server.hpp"
#include "support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <set>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

http::origin origin_of(const std::string& url) { return http::parse_url(url).value().origin; }

http::request get(std::string target, bool authorized = true) {
    http::request r{http::verb::get, target, 11};
    if (authorized) r.set(http::field::authorization, "Bearer t");
    return r;
}

struct outcome {
    error_code ec;
    http::response res;
};

/// Sends `n` requests at once and waits for all of them.
std::vector<outcome> send_all(test::io_threads& io, http::connection_pool& pool, const http::origin& to,
                              const std::function<http::request(int)>& make, int n, http::send_options opts = {}) {
    std::vector<outcome> out(static_cast<std::size_t>(n));
    std::promise<void> done;
    std::atomic<int> left{n};
    for (int i = 0; i < n; ++i)
        pool.async_send(to, make(i), opts, [&, i](error_code ec, http::response res) {
            out[static_cast<std::size_t>(i)] = {ec, std::move(res)};
            if (--left == 0) done.set_value();
        });
    auto f = done.get_future();
    if (f.wait_for(60s) != std::future_status::ready) {
        test::stop_threads_running(io.executor());
        FAIL("requests did not complete in time");
    }
    return out;
}

http::pool_options h2_options(http::http_version v = http::http_version::h2c) {
    http::pool_options o;
    o.version = v;
    return o;
}

int count(const std::vector<outcome>& v, const std::function<bool(const outcome&)>& pred) {
    return static_cast<int>(std::count_if(v.begin(), v.end(), pred));
}

} // namespace

// ---- real servers: nginx ---------------------------------------------------------------------

TEST_CASE("http2 nginx: h2 by ALPN over TLS carries 300 requests in flight on one connection, beyond its stream limit") {
    test::nginx_server nginx;
    test::io_threads io(2);
    auto o = h2_options(http::http_version::http2);
    o.tls.ca_file = nginx.ca_file();
    o.tls.use_system_store = false;
    http::connection_pool pool(io.executor(), o);
    // nginx allows 128 streams per connection: the other 172 wait their turn (FIFO).
    const auto out = send_all(io, pool, origin_of(nginx.h2_url()), [](int) { return get("/proto"); }, 300);
    CHECK(count(out, [](const outcome& r) { return !r.ec && r.res.body() == "HTTP/2.0" && r.res.version() == 20; }) == 300);
    const auto s = pool.stats();
    CHECK(s.connections_opened == 1);
    CHECK(s.http2_connections == 1);
    CHECK(s.http2_requests == 300);
    CHECK(s.failures == 0);
}

TEST_CASE("http2 nginx: fields arrive lower-cased with Host as :authority; a header that would inject is refused") {
    test::nginx_server nginx;
    test::io_threads io(1);
    auto o = h2_options(http::http_version::http2);
    o.tls.ca_file = nginx.ca_file();
    o.tls.use_system_store = false;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(nginx.h2_url());
    auto req = get("/fields");
    req.set("X-Custom", "Value 1");
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, req, tuple_awaitable));
    REQUIRE_FALSE(ec);
    CHECK(res.body() == "Value 1|127.0.0.1|Bearer t");

    auto bad = get("/fields");
    bad.set("X-Custom", "a\r\nx-injected: 1");
    auto [bec, bres] = test::run(io.executor(), pool.async_send(to, bad, tuple_awaitable));
    CHECK(bec == errc::invalid_header_value);
    CHECK(pool.stats().http2_requests == 1); // the bad one never became a stream
}

TEST_CASE("http2 nginx: a TLS server that picks HTTP/1.1 by ALPN keeps the origin on HTTP/1.1, on the same handshake") {
    test::nginx_server nginx;
    test::io_threads io(1);
    auto o = h2_options(http::http_version::http2);
    o.tls.ca_file = nginx.ca_file();
    o.tls.use_system_store = false;
    o.max_connections_per_origin = 4;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(nginx.h1_url());
    // One request first: its connection (the h2 attempt's) serves it over HTTP/1.1.
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/proto"), tuple_awaitable));
    REQUIRE_FALSE(ec);
    CHECK(res.body() == "HTTP/1.1");
    CHECK(pool.stats().connections_opened == 1); // no second handshake
    const auto out = send_all(io, pool, to, [](int) { return get("/proto"); }, 40);
    CHECK(count(out, [](const outcome& r) { return !r.ec && r.res.body() == "HTTP/1.1"; }) == 40);
    const auto s = pool.stats();
    CHECK(s.http2_connections == 0);
    CHECK(s.http2_requests == 0);
    CHECK(s.connections_opened <= 4);
}

TEST_CASE("http2 nginx: h2c with prior knowledge") {
    test::nginx_server nginx;
    test::io_threads io(1);
    {
        http::connection_pool pool(io.executor(), h2_options(http::http_version::h2c));
        const auto out = send_all(io, pool, origin_of(nginx.h2c_url()), [](int) { return get("/proto"); }, 100);
        CHECK(count(out, [](const outcome& r) { return !r.ec && r.res.body() == "HTTP/2.0"; }) == 100);
        CHECK(pool.stats().connections_opened == 1);
        // 401s come back as responses, like any status.
        auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(nginx.h2c_url()), get("/", false), tuple_awaitable));
        CHECK_FALSE(ec);
        CHECK(res.result_int() == 401);
    }
}

// ---- scripted servers: limits and hostile behaviour -----------------------------------------

TEST_CASE("http2: the server's MAX_CONCURRENT_STREAMS is never exceeded; beyond it requests wait in order") {
    std::mutex m;
    std::vector<std::int32_t> pending;
    std::size_t most = 0;
    // Answers only in pairs: a client that kept to 2 streams gets every answer; the most pending
    // the server ever saw is the limit.
    test::h2::h2_server server(
        [&](test::h2::peer& p, std::int32_t id, const test::h2::peer::received&) {
            std::lock_guard lock(m);
            pending.push_back(id);
            most = std::max(most, pending.size());
            if (pending.size() == 2) {
                for (auto s : pending) p.respond(s, 200, {}, "ok");
                pending.clear();
            }
        },
        {.max_streams = 2});
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto out = send_all(io, pool, origin_of(server.url()), [](int) { return get("/"); }, 20);
    CHECK(count(out, [](const outcome& r) { return !r.ec && r.res.body() == "ok"; }) == 20);
    CHECK(most == 2);
    CHECK(server.connections() == 1);
    CHECK(server.requests() == 20);
}

TEST_CASE("http2: when every connection is full another opens, up to max_connections; then requests queue") {
    test::h2::h2_server server([](test::h2::peer&, std::int32_t, const test::h2::peer::received&) {}, // never answers
                               {.max_streams = 2});
    test::io_threads io(1);
    auto o = h2_options();
    o.http2.max_connections = 3;
    http::connection_pool pool(io.executor(), o);
    const auto to = origin_of(server.url());
    http::send_options held;
    held.timeout = 5s; // the six streams stay taken well after the seventh gave up
    std::vector<outcome> out;
    std::thread sender([&] { out = send_all(io, pool, to, [](int) { return get("/"); }, 6, held); });
    CHECK(test::eventually([&] { return server.requests() == 6; }));
    http::send_options brief;
    brief.timeout = 300ms;
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), brief, tuple_awaitable));
    CHECK(ec == errc::queue_timeout); // it waited in the queue: every stream of every connection was taken
    sender.join();
    CHECK(server.connections() == 3);
    CHECK(server.requests() == 6);
    CHECK(count(out, [](const outcome& r) { return r.ec == errc::request_timeout; }) == 6);
}

TEST_CASE("http2: a server that resets every stream: typed errors, one connection, nothing resent") {
    test::h2::h2_server server([](test::h2::peer& p, std::int32_t id, const test::h2::peer::received&) {
        p.reset(id, NGHTTP2_INTERNAL_ERROR);
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto out = send_all(io, pool, origin_of(server.url()), [](int) { return get("/"); }, 10);
    CHECK(count(out, [](const outcome& r) { return r.ec == errc::stream_reset; }) == 10);
    CHECK(server.connections() == 1);
    CHECK(server.requests() == 10);
    CHECK(pool.stats().resends == 0);
}

TEST_CASE("http2: REFUSED_STREAM is resent, at most max_resends times, then a typed error") {
    test::h2::h2_server server([](test::h2::peer& p, std::int32_t id, const test::h2::peer::received&) {
        p.reset(id, NGHTTP2_REFUSED_STREAM);
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto out = send_all(io, pool, origin_of(server.url()), [](int) { return get("/"); }, 5);
    CHECK(count(out, [](const outcome& r) { return r.ec == errc::stream_refused; }) == 5);
    CHECK(server.requests() == 15); // each sent once and resent twice
    CHECK(pool.stats().resends == 10);
}

TEST_CASE("http2: a server that answers GOAWAY on every connection: resent on new connections, bounded") {
    test::h2::h2_server server([](test::h2::peer& p, std::int32_t, const test::h2::peer::received&) {
        p.goaway(0); // nothing processed
        test::h2::h2_server::close_after_output(p);
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server.url()), get("/"), tuple_awaitable));
    CHECK(ec == errc::stream_refused);
    CHECK(server.connections() == 3);
    CHECK(pool.stats().resends == 2);
}

TEST_CASE("http2: GOAWAY resends only the streams above its last stream id; the processed ones complete") {
    std::atomic<int> calls{0};
    test::h2::h2_server server([&](test::h2::peer& p, std::int32_t id, const test::h2::peer::received&) {
        // The first connection answers stream 1, then says GOAWAY(last = 1) to stream 3 instead
        // of answering it; the resend, on a second connection, is answered.
        if (calls.fetch_add(1) == 1)
            p.goaway(1);
        else
            p.respond(id, 200, {}, "ok");
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto to = origin_of(server.url());
    auto [e1, r1] = test::run(io.executor(), pool.async_send(to, get("/"), tuple_awaitable));
    CHECK_FALSE(e1);
    auto [e2, r2] = test::run(io.executor(), pool.async_send(to, get("/"), tuple_awaitable));
    CHECK_FALSE(e2);
    CHECK(r2.body() == "ok");
    CHECK(server.connections() == 2);
    CHECK(pool.stats().resends == 1);
}

TEST_CASE("http2: requests queued behind a connection that goes away get another one at once") {
    std::atomic<int> calls{0};
    test::h2::h2_server server(
        [&](test::h2::peer& p, std::int32_t id, const test::h2::peer::received&) {
            p.respond(id, 200, {}, "ok");
            if (calls.fetch_add(1) == 1) { // the first connection's second stream: then it leaves
                p.goaway(id);
                test::h2::h2_server::close_after_output(p);
            }
        },
        {.max_streams = 1}); // one stream at a time: the GOAWAY refuses none, the rest are queued
    test::io_threads io(1);
    auto o = h2_options();
    o.request_timeout = 20s;
    o.queue_timeout = 20s; // far beyond the test's own limit: a stranded request fails the test
    http::connection_pool pool(io.executor(), o);
    const auto out = send_all(io, pool, origin_of(server.url()), [](int) { return get("/"); }, 8);
    CHECK(count(out, [](const outcome& r) { return !r.ec && r.res.body() == "ok"; }) == 8);
    CHECK(server.connections() == 2);
    CHECK(pool.stats().resends == 0); // nothing was refused: only the queue moved
}

TEST_CASE("http2: header list and body limits end one stream with the HTTP/1.1 errors; the connection goes on") {
    test::h2::h2_server server([](test::h2::peer& p, std::int32_t id, const test::h2::peer::received& r) {
        const auto path = r.header(":path");
        if (path == "/big-header")
            p.respond(id, 200, {{"x-huge", std::string(40 * 1024, 'h')}}, "");
        else if (path == "/big-body")
            p.respond(id, 200, {}, std::string(1 << 20, 'b'));
        else
            p.respond(id, 200, {}, "ok");
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto to = origin_of(server.url());
    auto [e1, r1] = test::run(io.executor(), pool.async_send(to, get("/big-header"), tuple_awaitable));
    CHECK(e1 == errc::header_too_large);
    http::send_options small;
    small.body_limit = 1000;
    auto [e2, r2] = test::run(io.executor(), pool.async_send(to, get("/big-body"), small, tuple_awaitable));
    CHECK(e2 == errc::body_too_large);
    auto [e3, r3] = test::run(io.executor(), pool.async_send(to, get("/"), tuple_awaitable));
    CHECK_FALSE(e3);
    CHECK(r3.body() == "ok");
    CHECK(server.connections() == 1);
}

TEST_CASE("http2: a server that never sends WINDOW_UPDATE, or never ends a response: the deadline resets "
          "that stream only") {
    test::h2::h2_server server(
        [](test::h2::peer& p, std::int32_t id, const test::h2::peer::received& r) {
            if (r.header(":path") == "/endless")
                p.respond(id, 200, {}, "partial", false);
            else
                p.respond(id, 200, {}, "ok");
        },
        {.window_updates = false});
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto to = origin_of(server.url());
    http::send_options quick;
    quick.timeout = 300ms;
    http::request post{http::verb::post, "/upload", 11};
    post.body() = std::string(200 * 1024, 'u'); // past the 64 KiB the server's windows allow
    post.prepare_payload();
    auto [e1, r1] = test::run(io.executor(), pool.async_send(to, post, quick, tuple_awaitable));
    CHECK(e1 == errc::request_timeout);
    auto [e2, r2] = test::run(io.executor(), pool.async_send(to, get("/endless"), quick, tuple_awaitable));
    CHECK(e2 == errc::request_timeout);
    auto [e3, r3] = test::run(io.executor(), pool.async_send(to, get("/"), tuple_awaitable));
    CHECK_FALSE(e3);
    CHECK(r3.body() == "ok");
    CHECK(server.connections() == 1);
    CHECK(test::eventually([&] { return server.resets() == 2; })); // each timed-out stream was reset
}

TEST_CASE("http2: a cancelled request resets its stream, not the connection") {
    test::h2::h2_server server([](test::h2::peer& p, std::int32_t id, const test::h2::peer::received& r) {
        if (r.header(":path") != "/stall") p.respond(id, 200, {}, "ok");
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    const auto to = origin_of(server.url());
    asio::cancellation_signal signal;
    std::promise<error_code> cancelled;
    pool.async_send(to, get("/stall"), asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, http::response) {
                        cancelled.set_value(ec);
                    }));
    REQUIRE(test::eventually([&] { return server.requests() == 1; }));
    asio::post(io.executor(), [&] { signal.emit(asio::cancellation_type::terminal); });
    auto f = cancelled.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == asio::error::operation_aborted);
    auto [ec, res] = test::run(io.executor(), pool.async_send(to, get("/"), tuple_awaitable));
    CHECK_FALSE(ec);
    CHECK(server.connections() == 1);
    CHECK(test::eventually([&] { return server.resets() == 1; }));
}

// ---- raw frames ----------------------------------------------------------------------------------

namespace {
// Reads what the client sends until `stop` says so (or the connection ends); returns it.
std::string read_until(asio::ip::tcp::socket& s, const std::function<bool(const std::string&)>& stop) {
    std::string in;
    std::array<char, 4096> buf{};
    boost::system::error_code ec;
    while (!stop(in)) {
        const auto n = s.read_some(asio::buffer(buf), ec);
        if (ec) break;
        in.append(buf.data(), n);
    }
    return in;
}
// Whether the client's bytes (preface, then frames) hold a HEADERS frame yet.
bool has_request(const std::string& in) {
    std::size_t at = 24;
    while (at + 9 <= in.size()) {
        const std::size_t len = (static_cast<std::size_t>(static_cast<unsigned char>(in[at])) << 16) |
                                (static_cast<std::size_t>(static_cast<unsigned char>(in[at + 1])) << 8) |
                                static_cast<unsigned char>(in[at + 2]);
        if (in[at + 3] == NGHTTP2_HEADERS) return true;
        at += 9 + len;
    }
    return false;
}
} // namespace

TEST_CASE("http2: a CONTINUATION flood fails the connection with a typed error") {
    test::h2::h2_server server([](asio::ip::tcp::socket& s) {
        read_until(s, has_request);
        std::string out = test::h2::frame(NGHTTP2_SETTINGS, 0, 0, "");
        out += test::h2::frame(NGHTTP2_HEADERS, 0, 1, "\x88"); // :status 200, no END_HEADERS
        for (int i = 0; i < 100; ++i) out += test::h2::frame(NGHTTP2_CONTINUATION, 0, 1, std::string("\x00\x01x\x01y", 5));
        boost::system::error_code ec;
        asio::write(s, asio::buffer(out), ec);
        read_until(s, [](const std::string&) { return false; }); // until the client closes
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server.url()), get("/"), tuple_awaitable));
    CHECK(ec == errc::http2_protocol_error);
}

TEST_CASE("http2: an HTTP/1.1 answer to h2c prior knowledge is a typed error at once") {
    test::h2::h2_server server([](asio::ip::tcp::socket& s) {
        read_until(s, [](const std::string& in) { return in.size() >= 24; });
        const std::string answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        boost::system::error_code ec;
        asio::write(s, asio::buffer(answer), ec);
    });
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), h2_options());
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server.url()), get("/"), tuple_awaitable));
    CHECK(ec == errc::http2_protocol_error);
}

TEST_CASE("http2: a peer that stops answering is found by PING, well before the request's deadline") {
    test::h2::h2_server server([](asio::ip::tcp::socket& s) {
        read_until(s, has_request);
        const std::string out = test::h2::frame(NGHTTP2_SETTINGS, 0, 0, "") + test::h2::frame(NGHTTP2_SETTINGS, 1, 0, "");
        boost::system::error_code ec;
        asio::write(s, asio::buffer(out), ec);
        read_until(s, [](const std::string&) { return false; }); // reads, never answers, never ACKs a PING
    });
    test::io_threads io(1);
    auto o = h2_options();
    o.http2.ping_interval = 200ms;
    o.http2.ping_timeout = 200ms;
    o.request_timeout = 60s;
    http::connection_pool pool(io.executor(), o);
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server.url()), get("/"), tuple_awaitable), 30s);
    CHECK(ec == errc::http2_protocol_error);
}

TEST_CASE("http2: a server that never sends its SETTINGS fails within connect_timeout, not the request's deadline") {
    test::h2::h2_server server([](asio::ip::tcp::socket& s) {
        read_until(s, [](const std::string&) { return false; }); // reads, says nothing
    });
    test::io_threads io(1);
    auto o = h2_options();
    o.connect_timeout = 300ms;
    o.request_timeout = 60s;
    http::connection_pool pool(io.executor(), o);
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server.url()), get("/"), tuple_awaitable), 30s);
    CHECK(ec == errc::http2_protocol_error);
}

TEST_CASE("http2: a server that stops reading cannot hold a request past its deadline") {
    test::h2::h2_server server([](asio::ip::tcp::socket& s) {
        read_until(s, [](const std::string& in) { return in.size() >= 24; });
        // Windows as large as they go, so the client writes until the socket is full; then
        // nothing is read again.
        std::string settings;
        for (std::uint32_t v : {4u /* INITIAL_WINDOW_SIZE */}) {
            settings += static_cast<char>(v >> 8);
            settings += static_cast<char>(v);
            for (int shift = 24; shift >= 0; shift -= 8) settings += static_cast<char>((0x7fffffffu >> shift) & 0xff);
        }
        std::string update;
        for (int shift = 24; shift >= 0; shift -= 8) update += static_cast<char>(((0x7fffffffu - 65535u) >> shift) & 0xff);
        const std::string out = test::h2::frame(NGHTTP2_SETTINGS, 0, 0, settings) + test::h2::frame(NGHTTP2_WINDOW_UPDATE, 0, 0, update);
        boost::system::error_code ec;
        asio::write(s, asio::buffer(out), ec);
        std::this_thread::sleep_for(4s); // holds the socket unread well past the client giving up
    });
    test::io_threads io(1);
    auto o = h2_options();
    o.http2.ping_timeout = 500ms;
    http::connection_pool pool(io.executor(), o);
    http::request post{http::verb::post, "/upload", 11};
    post.body() = std::string(32 << 20, 'u');
    post.prepare_payload();
    http::send_options quick;
    quick.timeout = 500ms;
    auto [ec, res] = test::run(io.executor(), pool.async_send(origin_of(server.url()), post, quick, tuple_awaitable), 20s);
    CHECK(ec == errc::request_timeout);
}
