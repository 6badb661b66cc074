// http2::client_session (issue 19) against nghttp2's own server session, in memory: a real
// HTTP/2 peer scripted per test, and raw frames for what no well-behaved server sends.
#include "http2/session.hpp"
#include "h2_peer.hpp"

#include <boost/asio/error.hpp>

#include <doctest/doctest.h>

#include <nghttp2/nghttp2.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace tokenflight;
using tokenflight::http2::stream_errc;

namespace {

using fake_server = test::h2::peer;
using test::h2::frame;

// Bytes back and forth until neither side has anything to say (bounded: a loop that does not
// settle fails the test).
void pump(http2::client_session& c, fake_server& s) {
    for (int round = 0; round < 10'000; ++round) {
        std::string to_server, to_client;
        c.take_output(to_server);
        if (!to_server.empty()) REQUIRE(s.receive(to_server));
        to_client = s.output();
        if (!to_client.empty()) c.receive(to_client);
        if (to_server.empty() && to_client.empty()) return;
    }
    FAIL("the exchange never settled");
}

http2::request get(std::string path = "/") {
    http2::request r;
    r.authority = "api.test";
    r.path = std::move(path);
    return r;
}

std::string header(const std::vector<std::pair<std::string, std::string>>& h, const std::string& name) {
    for (const auto& [n, v] : h)
        if (n == name) return v;
    return "<none>";
}

std::map<std::int32_t, http2::completed> by_id(std::vector<http2::completed> v) {
    std::map<std::int32_t, http2::completed> out;
    for (auto& c : v) out[c.stream_id] = std::move(c);
    return out;
}

} // namespace

TEST_CASE("http2 session: a request and its response; pseudo-headers built here, fields lower-cased, "
          "connection-specific fields dropped") {
    http2::client_session c;
    fake_server s;
    s.on_request = [](fake_server& srv, std::int32_t id, const fake_server::received&) {
        srv.respond(id, 200, {{"content-type", "application/json"}}, "{\"ok\":true}");
    };
    auto req = get("/v1/items?x=1");
    req.headers = {{"X-Api-Key", "k1"}, {"Connection", "keep-alive"}, {"Host", "other"}, {"TE", "trailers"},
                   {"Transfer-Encoding", "chunked"}};
    auto id = c.submit(req);
    REQUIRE(id);
    pump(c, s);
    auto done = c.take_completed();
    REQUIRE(done.size() == 1);
    CHECK(done[0].stream_id == *id);
    CHECK_FALSE(done[0].error);
    CHECK(done[0].res.status == 200);
    CHECK(done[0].res.body == "{\"ok\":true}");
    CHECK(header(done[0].res.headers, "content-type") == "application/json");
    const auto& seen = s.requests[*id].headers;
    CHECK(header(seen, ":method") == "GET");
    CHECK(header(seen, ":scheme") == "https");
    CHECK(header(seen, ":authority") == "api.test");
    CHECK(header(seen, ":path") == "/v1/items?x=1");
    CHECK(header(seen, "x-api-key") == "k1");
    CHECK(header(seen, "te") == "trailers");
    for (const char* gone : {"connection", "host", "transfer-encoding"}) CHECK(header(seen, gone) == "<none>");
    CHECK(c.open_streams() == 0);
}

TEST_CASE("http2 session: a body larger than a frame and than the default window arrives whole") {
    http2::client_session c;
    fake_server s;
    const std::string big(300'000, 'b');
    s.on_request = [&](fake_server& srv, std::int32_t id, const fake_server::received& r) {
        srv.respond(id, r.body == big ? 201 : 400, {}, big);
    };
    auto req = get("/upload");
    req.method = "POST";
    req.body = big;
    REQUIRE(c.submit(req));
    pump(c, s);
    auto done = c.take_completed();
    REQUIRE(done.size() == 1);
    CHECK(done[0].res.status == 201);
    CHECK(done[0].res.body == big);
}

TEST_CASE("http2 session: a field that could inject, or a pseudo-header, is refused before anything is queued") {
    http2::client_session c;
    const auto refused = [&](http2::request r, errc why) {
        auto id = c.submit(std::move(r));
        return !id && id.error() == why;
    };
    for (const char* bad : {"a\r\nx-injected: 1", "a\nb", "a\rb", "a\x01", "a\x7f"}) {
        auto r = get();
        r.headers = {{"x-value", bad}};
        CHECK(refused(r, errc::invalid_header_value));
    }
    {
        auto r = get();
        r.headers = {{"x-value", std::string("a\0b", 3)}};
        CHECK(refused(r, errc::invalid_header_value));
    }
    for (const char* bad : {":path", ":authority", "bad name", "x\r\ny", ""}) {
        auto r = get();
        r.headers = {{bad, "v"}};
        CHECK(refused(r, errc::invalid_header_name));
    }
    auto m = get();
    m.method = "GE T";
    CHECK(refused(m, errc::invalid_method));
    auto p = get("/a b");
    CHECK(refused(p, errc::invalid_request_target));
    auto a = get();
    a.authority = "h\r\nx";
    CHECK(refused(a, errc::invalid_request_target));
    CHECK(c.open_streams() == 0);
    std::string out;
    c.take_output(out);
    CHECK(out.find("x-injected") == std::string::npos);
}

TEST_CASE("http2 session: REFUSED_STREAM is resendable, another reset is not") {
    http2::client_session c;
    fake_server s;
    s.on_request = [](fake_server& srv, std::int32_t id, const fake_server::received& r) {
        const auto path = header(r.headers, ":path");
        if (path == "/refuse") srv.reset(id, NGHTTP2_REFUSED_STREAM);
        else if (path == "/reset") srv.reset(id, NGHTTP2_INTERNAL_ERROR);
        else
            srv.respond(id, 200, {{"x-final", "yes"}}, "ok");
    };
    const auto refuse = c.submit(get("/refuse")), reset = c.submit(get("/reset")), fine = c.submit(get("/fine"));
    pump(c, s);
    auto done = by_id(c.take_completed());
    REQUIRE(done.size() == 3);
    CHECK(done[*refuse].error == stream_errc::refused);
    CHECK(http2::resendable(done[*refuse].error));
    CHECK(done[*reset].error == stream_errc::reset);
    CHECK_FALSE(http2::resendable(done[*reset].error));
    CHECK_FALSE(done[*fine].error);
    CHECK(done[*fine].res.status == 200);
    CHECK(header(done[*fine].res.headers, "x-final") == "yes");
}

TEST_CASE("http2 session: an interim 1xx response's fields are dropped, the final one's kept") {
    http2::client_session c;
    fake_server s;
    s.on_request = [](fake_server& srv, std::int32_t id, const fake_server::received&) {
        srv.interim(id);
        srv.respond(id, 200, {{"x-final", "yes"}}, "ok");
    };
    const auto id = c.submit(get());
    pump(c, s);
    auto done = by_id(c.take_completed());
    REQUIRE(done.size() == 1);
    CHECK_FALSE(done[*id].error);
    CHECK(done[*id].res.status == 200);
    CHECK(done[*id].res.body == "ok");
    CHECK(header(done[*id].res.headers, "x-interim") == "<none>");
    CHECK(header(done[*id].res.headers, "x-final") == "yes");
}

TEST_CASE("http2 session: GOAWAY: streams above its last id were never processed and are resendable") {
    http2::client_session c;
    fake_server s;
    std::vector<std::int32_t> seen;
    s.on_request = [&](fake_server&, std::int32_t id, const fake_server::received&) { seen.push_back(id); };
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(*c.submit(get()));
    pump(c, s);
    REQUIRE(seen.size() == 4);
    // The server processes the first two, then goes away.
    s.respond(ids[0], 200, {}, "a");
    s.respond(ids[1], 200, {}, "b");
    s.goaway(ids[1]);
    pump(c, s);
    CHECK(c.goaway_received());
    CHECK(c.last_stream_id() == ids[1]);
    CHECK_FALSE(c.can_submit());
    CHECK(c.submit(get()).error() == errc::closed);
    auto done = by_id(c.take_completed());
    REQUIRE(done.size() == 4);
    CHECK(done[ids[0]].res.body == "a");
    CHECK(done[ids[1]].res.body == "b");
    CHECK(done[ids[2]].error == stream_errc::refused);
    CHECK(done[ids[3]].error == stream_errc::refused);
}

TEST_CASE("http2 session: a header list or a body past its limit fails that stream only") {
    http2::limits l;
    l.max_header_list = 16 * 1024;
    l.max_body = 100'000;
    http2::client_session c(l);
    fake_server s;
    s.on_request = [](fake_server& srv, std::int32_t id, const fake_server::received& r) {
        const auto path = header(r.headers, ":path");
        if (path == "/headers") {
            std::vector<std::pair<std::string, std::string>> h;
            for (int i = 0; i < 40; ++i) h.emplace_back("x-h" + std::to_string(i), std::string(1000, 'v'));
            srv.respond(id, 200, h, "");
        } else if (path == "/body") {
            srv.respond(id, 200, {}, std::string(1'000'000, 'x'));
        } else {
            srv.respond(id, 200, {}, "small");
        }
    };
    const auto headers = c.submit(get("/headers")), body = c.submit(get("/body")), fine = c.submit(get("/fine"));
    pump(c, s);
    auto done = by_id(c.take_completed());
    REQUIRE(done.size() == 3);
    CHECK(done[*headers].error == stream_errc::header_list_too_large);
    CHECK(done[*body].error == stream_errc::body_too_large);
    CHECK(done[*fine].res.body == "small");
    // The connection goes on.
    const auto again = c.submit(get("/fine"));
    REQUIRE(again);
    pump(c, s);
    CHECK(by_id(c.take_completed())[*again].res.body == "small");
}

TEST_CASE("http2 session: the server's MAX_CONCURRENT_STREAMS bounds what is submitted; a cancel resets one stream") {
    http2::client_session c;
    fake_server s({.max_streams = 2});
    std::vector<std::int32_t> seen;
    s.on_request = [&](fake_server&, std::int32_t id, const fake_server::received&) { seen.push_back(id); };
    std::string out;
    c.take_output(out);
    s.receive(out);
    c.receive(s.output()); // the server's SETTINGS: 2 streams
    const auto a = c.submit(get()), b = c.submit(get());
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(c.can_submit());
    CHECK(c.submit(get()).error() == errc::closed);
    c.cancel(*a);
    pump(c, s);
    s.respond(*b, 200, {}, "b");
    pump(c, s);
    auto done = by_id(c.take_completed());
    CHECK(done[*a].error == boost::asio::error::operation_aborted);
    CHECK(done[*b].res.body == "b");
    CHECK(c.can_submit());
}

TEST_CASE("http2 session: hostile frames end the connection with a typed error, every stream failed") {
    SUBCASE("CONTINUATION frames without end") {
        http2::client_session c;
        const auto id = c.submit(get());
        REQUIRE(id);
        std::string out;
        c.take_output(out);
        std::string in = frame(NGHTTP2_SETTINGS, 0, 0, "");
        in += frame(NGHTTP2_HEADERS, 0, static_cast<std::uint32_t>(*id), "\x88"); // :status 200, no END_HEADERS
        for (int i = 0; i < 100; ++i) in += frame(NGHTTP2_CONTINUATION, 0, static_cast<std::uint32_t>(*id), std::string("\x00\x01x\x01y", 5));
        CHECK(c.receive(in) == stream_errc::connection_error);
        auto done = c.take_completed();
        REQUIRE(done.size() == 1);
        CHECK(done[0].error == stream_errc::connection_error);
        CHECK_FALSE(c.can_submit());
    }
    SUBCASE("garbage instead of frames") {
        http2::client_session c;
        REQUIRE(c.submit(get()));
        std::string out;
        c.take_output(out);
        CHECK(c.receive("HTTP/1.1 400 Bad Request\r\n\r\n") == stream_errc::connection_error);
        CHECK(c.take_completed().size() == 1);
        CHECK(c.finished());
    }
}
