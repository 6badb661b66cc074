// The test server's HTTP/2 (http_server::options::http2), checked with real HTTP/2 clients: nghttp
// and h2load (Debian's nghttp2-client) run as child processes against 127.0.0.1, over h2c with
// prior knowledge and over TLS with ALPN; HTTP/1.1 on the same server with Beast. Every check is
// a count or a frame seen, never a duration.
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include "support.hpp"
#include "temp_file.hpp"
#include "tls_fixture.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/ssl.h>

#include <cstdio>
#include <regex>
#include <string>

#include <sys/wait.h>

using namespace tokenflight;
namespace asio = boost::asio;
namespace beast = boost::beast;
using testing::http_server;
using testing::reply;

namespace {

struct run_result {
    int exit_code = -1;
    std::string output; // stdout and stderr
};

// Runs a shell command line (all of its arguments are ours: no quoting needed) to completion.
run_result run(const std::string& command) {
    run_result r;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
        r.output.append(buf, n);
    const int status = ::pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// A child process started now and waited for later (its output read to the end then).
struct child {
    FILE* pipe = nullptr;
    explicit child(const std::string& command) : pipe(::popen((command + " 2>&1").c_str(), "r")) {
        REQUIRE(pipe);
    }
    run_result wait() {
        run_result r;
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
            r.output.append(buf, n);
        const int status = ::pclose(std::exchange(pipe, nullptr));
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return r;
    }
    ~child() {
        if (pipe)
            ::pclose(pipe);
    }
};

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// Echoes what the handler saw; other paths pick the reply.
asio::awaitable<reply> handle(const http::request& req, http::response& res) {
    const std::string target(req.target());
    res.set("x-method", req.method_string());
    res.set("x-host", req[http::field::host]);
    res.set("x-version", std::to_string(req.version()));
    res.set("x-target", target);
    res.set(http::field::connection, "keep-alive"); // connection-specific: never sent over HTTP/2
    res.set(http::field::content_type, "text/plain");
    res.body() = "echo:" + req.body();
    if (target == "/reset")
        co_return reply::reset;
    if (target == "/mid") {
        res.body() = std::string(10000, 'x');
        co_return reply::reset_mid_body;
    }
    if (target == "/close")
        co_return reply::close;
    if (target == "/bye")
        co_return reply::send_and_close;
    if (target == "/stall")
        co_return reply::stall;
    co_return reply::send;
}

http_server::options h2_options() {
    http_server::options o;
    o.http2 = true;
    return o;
}

std::string url(const http_server& server, std::string_view path) {
    return server.base_url() + std::string(path);
}

// The id of the stream nghttp sent its (only) request on, from its -v trace.
int request_stream(const std::string& trace) {
    std::smatch m;
    static const std::regex headers(
        R"(send HEADERS frame <length=\d+, flags=0x[0-9a-f]+, stream_id=(\d+)>)");
    REQUIRE(std::regex_search(trace, m, headers));
    return std::stoi(m[1]);
}

// The last stream id of the GOAWAY nghttp received, from its -v trace; -1 for none.
int goaway_last_stream(const std::string& trace) {
    const auto at = trace.find("recv GOAWAY frame");
    if (at == std::string::npos)
        return -1;
    std::smatch m;
    static const std::regex last(R"(last_stream_id=(\d+), error_code=NO_ERROR)");
    const std::string rest = trace.substr(at);
    REQUIRE(std::regex_search(rest, m, last));
    return std::stoi(m[1]);
}

// One HTTP/1.1 request over `stream`, with Beast.
template <class Stream> http::response exchange(Stream& stream, const std::string& host) {
    http::request req{http::verb::post, "/echo", 11};
    req.set(http::field::host, host);
    req.body() = "over http/1.1";
    req.prepare_payload();
    beast::http::write(stream, req);
    beast::flat_buffer buffer;
    http::response res;
    beast::http::read(stream, buffer, res);
    return res;
}

} // namespace

TEST_CASE("http2: h2c with prior knowledge runs the handler once per stream, many streams on one "
          "connection") {
    http_server server(handle, h2_options());
    test::temp_file body("hello h2", "tokenflight-h2-body");
    const auto r = run("nghttp -v -d " + body.path() + " " + url(server, "/echo?a=1") + " " +
                       url(server, "/two") + " " + url(server, "/three"));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "echo:hello h2"));
    CHECK(contains(r.output, "x-method: POST"));
    CHECK(contains(r.output, "x-version: 20"));
    CHECK(contains(r.output, "x-target: /echo?a=1"));
    CHECK(contains(r.output, "x-host: 127.0.0.1:" + std::to_string(server.port())));
    CHECK(contains(r.output, "content-length: 13"));
    CHECK_FALSE(contains(r.output, "connection: keep-alive"));
    CHECK(server.requests() == 3);
    CHECK(server.http2_connections() == 1);
    CHECK(server.connections_accepted() == 1);
}

TEST_CASE("http2: h2 over TLS is chosen by ALPN; a client offering only http/1.1 gets HTTP/1.1") {
    test::tls_fixture tls;
    auto opts = h2_options();
    opts.tls = &tls.server_ctx;
    http_server server(handle, opts);

    const auto r = run("nghttp -v " + url(server, "/echo")); // nghttp accepts any certificate
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "The negotiated protocol: h2"));
    CHECK(contains(r.output, "x-version: 20"));
    CHECK(contains(r.output, "echo:"));
    CHECK(server.http2_connections() == 1);

    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    asio::ssl::stream<asio::ip::tcp::socket> stream(ioc, ctx);
    static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    REQUIRE(SSL_set_alpn_protos(stream.native_handle(), http11, sizeof http11) == 0);
    stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), server.port()});
    stream.handshake(asio::ssl::stream_base::client);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(stream.native_handle(), &alpn, &alpn_len);
    CHECK(std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) == "http/1.1");
    const auto res = exchange(stream, "127.0.0.1");
    CHECK(res.result_int() == 200);
    CHECK(res.version() == 11);
    CHECK(res.body() == "echo:over http/1.1");
    CHECK(server.http2_connections() == 1);
    CHECK(server.requests() == 2);
}

TEST_CASE(
    "http2: an http2 server still serves HTTP/1.1 on plain connections, keep-alive included") {
    http_server server(handle, h2_options());
    asio::io_context ioc;
    asio::ip::tcp::socket socket(ioc);
    socket.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    for (int i = 0; i < 2; ++i) {
        const auto res = exchange(socket, "127.0.0.1");
        CHECK(res.result_int() == 200);
        CHECK(res.version() == 11);
        CHECK(res[http::field::connection] == "keep-alive");
        CHECK(res.body() == "echo:over http/1.1");
    }
    CHECK(server.requests() == 2);
    CHECK(server.http2_connections() == 0);
    CHECK(server.connections_accepted() == 1);
}

TEST_CASE("http2: h2load, 1000 requests 50 at a time on one connection, all answered") {
    auto opts = h2_options();
    opts.threads = 2; // the connection's strand keeps its streams' handlers apart
    http_server server(handle, opts);
    const auto r = run("h2load -c1 -m50 -n1000 " + url(server, "/echo"));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "requests: 1000 total, 1000 started, 1000 done, 1000 succeeded"));
    CHECK(contains(r.output, "status codes: 1000 2xx"));
    CHECK(server.requests() == 1000);
    CHECK(server.http2_connections() == 1);
    CHECK(server.connections_accepted() == 1);
}

TEST_CASE("http2: reset and reset_mid_body reset one stream with INTERNAL_ERROR") {
    http_server server(handle, h2_options());
    const auto r = run("nghttp -v " + url(server, "/reset"));
    INFO(r.output);
    CHECK(contains(r.output, "Some requests were not processed")); // nghttp still exits with 0
    CHECK(contains(r.output, "recv RST_STREAM frame"));
    CHECK(contains(r.output, "error_code=INTERNAL_ERROR"));
    CHECK_FALSE(contains(r.output, ":status:"));
    CHECK_FALSE(contains(r.output, "recv GOAWAY frame"));

    const auto mid = run("nghttp -v " + url(server, "/mid"));
    INFO(mid.output);
    CHECK(contains(mid.output, ":status: 200"));
    CHECK(contains(mid.output, "content-length: 10000"));
    CHECK(contains(mid.output, "recv DATA frame"));
    CHECK(contains(mid.output, "recv RST_STREAM frame"));
    CHECK(contains(mid.output, "error_code=INTERNAL_ERROR"));
    CHECK(server.requests() == 2);
    CHECK(server.http2_connections() == 2);
}

TEST_CASE(
    "http2: close sends GOAWAY below the stream; send_and_close answers, then GOAWAY naming it") {
    http_server server(handle, h2_options());
    const auto closed = run("nghttp -v " + url(server, "/close"));
    INFO(closed.output);
    const int id = request_stream(closed.output);
    const int last = goaway_last_stream(closed.output);
    CHECK(last >= 0);
    CHECK(last < id);
    CHECK_FALSE(contains(closed.output, ":status: 200"));

    const auto bye = run("nghttp -v " + url(server, "/bye"));
    INFO(bye.output);
    CHECK(bye.exit_code == 0);
    CHECK(contains(bye.output, ":status: 200"));
    CHECK(contains(bye.output, "echo:"));
    CHECK(goaway_last_stream(bye.output) == request_stream(bye.output));
    CHECK(server.requests() == 2);
    CHECK(
        test::eventually([&] { return server.open_connections() == 0; }, std::chrono::seconds(30)));
}

TEST_CASE("http2: a request body over body_limit resets its stream; the handler never runs") {
    auto opts = h2_options();
    opts.body_limit = 16;
    http_server server(handle, opts);
    test::temp_file body(std::string(1000, 'b'), "tokenflight-h2-body");
    const auto r = run("nghttp -v -d " + body.path() + " " + url(server, "/echo"));
    INFO(r.output);
    CHECK(contains(r.output, "recv RST_STREAM frame"));
    CHECK(contains(r.output, "error_code=CANCEL"));
    CHECK(server.requests() == 0);
}

TEST_CASE(
    "http2: a stalled stream leaves the others answered; close_idle_connections and stop end it") {
    SUBCASE("close_idle_connections: GOAWAY, then close once the answered stream is out") {
        http_server server(handle, h2_options());
        child client("nghttp -v " + url(server, "/stall") + " " + url(server, "/echo"));
        REQUIRE(test::eventually([&] { return server.requests() == 2; }, std::chrono::seconds(30)));
        server.close_idle_connections();
        const auto r = client.wait();
        INFO(r.output);
        CHECK(contains(r.output, "x-target: /echo"));
        CHECK_FALSE(contains(r.output, "x-target: /stall"));
        CHECK(contains(r.output, "recv GOAWAY frame"));
        CHECK(test::eventually([&] { return server.open_connections() == 0; },
                               std::chrono::seconds(30)));
    }
    SUBCASE("stop with the stream stalled") {
        http_server server(handle, h2_options());
        child client("nghttp -v " + url(server, "/stall"));
        REQUIRE(test::eventually([&] { return server.requests() == 1; }, std::chrono::seconds(30)));
        server.stop(); // returns: nothing waits for the stalled stream
        const auto r = client.wait();
        INFO(r.output);
        CHECK(contains(r.output, "Some requests were not processed"));
        CHECK_FALSE(contains(r.output, ":status:"));
    }
}

TEST_CASE(
    "http2: fake_auth_server passes options::server through, so its token endpoint speaks HTTP/2") {
    testing::fake_auth_server::options opts;
    opts.server.http2 = true;
    testing::fake_auth_server auth(opts);
    test::temp_file form(
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-client-secret",
        "tokenflight-h2-form");
    const auto r = run("nghttp -v -H 'content-type: application/x-www-form-urlencoded' -d " +
                       form.path() + " " + auth.token_url());
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, ":status: 200"));
    CHECK(contains(r.output, "access_token"));
    CHECK(auth.server().http2_connections() == 1);
}
