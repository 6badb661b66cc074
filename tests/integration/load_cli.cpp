// tokenflight-load as a user runs it: a separate process, against in-process servers whose own
// counters the tool's report must match.
#include "hostile_server.hpp"
#include "support.hpp"
#include "temp_file.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <thread>

using namespace tokenflight;
using namespace std::chrono_literals;

namespace {

constexpr const char* load_exe = TOKENFLIGHT_LOAD_EXE;
constexpr const char* client_secret = "LOAD-SECRET-must-not-leak";

struct outcome {
    int status = -1;
    std::string out, err;
};

outcome run_tool(const std::string& args, const std::string& env = "") {
    test::temp_file err_file("", "tokenflight-load-stderr");
    const std::string cmd = env + " " + load_exe + " " + args + " 2>" + err_file.path();
    outcome o;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, p)) o.out.append(buf, n);
    const int raw = ::pclose(p);
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    o.err = err_file.read();
    return o;
}

// As run_tool, and the tool's own peak resident set size (the shell execs into the tool, so
// wait4 reports the tool's usage), in KiB.
struct measured : outcome {
    long max_rss_kib = 0;
};
measured run_tool_measured(const std::string& args, const std::string& env = "") {
    test::temp_file out_file("", "tokenflight-load-out"), err_file("", "tokenflight-load-err");
    const std::string cmd = "exec " + (env.empty() ? std::string() : env + " ") + load_exe + " " + args + " >" +
                            out_file.path() + " 2>" + err_file.path() + " </dev/null";
    measured m;
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int raw = 0;
    struct rusage usage {};
    REQUIRE(::wait4(pid, &raw, 0, &usage) == pid);
    m.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    m.max_rss_kib = usage.ru_maxrss;
    m.out = out_file.read();
    m.err = err_file.read();
    return m;
}

void no_secret_in(const outcome& o) {
    CHECK(o.out.find(client_secret) == std::string::npos);
    CHECK(o.err.find(client_secret) == std::string::npos);
}

testing::fake_auth_server::options auth_options() {
    testing::fake_auth_server::options o;
    o.client_id = "load-client";
    o.client_secret = client_secret;
    return o;
}

std::string env_for(const testing::fake_auth_server& auth, const char* secret_value = client_secret) {
    return std::string("env TOKENFLIGHT_TOKEN_URL=") + auth.token_url() +
           " TOKENFLIGHT_CLIENT_ID=load-client TOKENFLIGHT_CLIENT_SECRET=" + secret_value;
}

std::uint64_t num(const boost::json::object& o, const char* key) { return o.at(key).to_number<std::uint64_t>(); }

} // namespace

TEST_CASE("usage errors exit 2 with one clear line") {
    auto none = run_tool("");
    CHECK(none.status == 2);
    CHECK(none.err.find("no URL") != std::string::npos);

    auto flag = run_tool(std::string("--client-secret ") + client_secret + " http://127.0.0.1:9/");
    CHECK(flag.status == 2);
    CHECK(flag.err.find("not accepted on the command line") != std::string::npos);
    no_secret_in(flag);

    auto bad = run_tool("-c nope http://127.0.0.1:9/");
    CHECK(bad.status == 2);
    CHECK(bad.err.find("bad value for -c") != std::string::npos);

    auto missing = run_tool("http://127.0.0.1:9/", "env -u TOKENFLIGHT_CLIENT_SECRET TOKENFLIGHT_TOKEN_URL=http://127.0.0.1:9/t TOKENFLIGHT_CLIENT_ID=x");
    CHECK(missing.status == 2);
    CHECK(missing.err.find("no client secret") != std::string::npos);

    auto help = run_tool("--help");
    CHECK(help.status == 0);
    CHECK(help.out.find("usage: tokenflight-load") != std::string::npos);
}

TEST_CASE("a --json run reports what the servers counted") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server::options ao;
    ao.api_key = "k1";
    testing::fake_api_server api(auth, ao);

    // Revoke every token while the run is under way: one refresh, and as many resends as 401s.
    std::atomic<bool> stop{false};
    std::thread revoker([&] {
        while (!stop && api.requests() < 1500) std::this_thread::sleep_for(1ms);
        if (!stop) api.revoke_all();
    });
    auto o = run_tool("-n 4000 -c 16 -t 1 --json -H 'x-api-key: k1' " + api.url("/json"), env_for(auth));
    stop = true;
    revoker.join();
    INFO(o.err);
    REQUIRE(o.status == 0);
    auto v = boost::json::parse(o.out);
    const auto& j = v.as_object();
    CHECK(num(j, "requests") == 4000);
    CHECK(num(j, "ok") == 4000);
    CHECK(num(j.at("status").as_object(), "200") == api.count_status(200));
    CHECK(num(j, "token_fetches") == auth.token_requests());
    CHECK(num(j, "retries_after_401") == api.count_status(401));
    CHECK(api.requests() == 4000 + api.count_status(401));
    CHECK(auth.token_requests() == 2);
    CHECK(j.at("errors").as_object().empty());
    const auto& lat = j.at("latency_ms").as_object();
    CHECK(lat.at("p50").to_number<double>() <= lat.at("p99").to_number<double>());
    CHECK(lat.at("p99").to_number<double>() <= lat.at("max").to_number<double>() * 1.01);
    CHECK(j.at("rps").to_number<double>() > 0);
    no_secret_in(o);
}

TEST_CASE("requests without a 2xx make the exit status 1") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server::options ao;
    ao.api_key = "required";
    testing::fake_api_server api(auth, ao);
    auto o = run_tool("-n 50 -c 5 --json " + api.url("/"), env_for(auth));
    CHECK(o.status == 1);
    auto v = boost::json::parse(o.out);
    CHECK(num(v.as_object().at("status").as_object(), "403") == 50);
    CHECK(num(v.as_object(), "ok") == 0);
}

TEST_CASE("no first token: refused credentials and a stalled endpoint exit 2, naming the cause") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    auto refused = run_tool("-n 10 " + api.url("/"), env_for(auth, "WRONG-SECRET"));
    CHECK(refused.status == 2);
    CHECK(refused.err.find("no first token") != std::string::npos);
    CHECK(refused.err.find("invalid_client") != std::string::npos);
    CHECK(api.requests() == 0);
    no_secret_in(refused);

    auth.malform_next(-1, testing::malformation::stall);
    auto stalled = run_tool("-n 10 --timeout 0.5 " + api.url("/"), env_for(auth));
    CHECK(stalled.status == 2);
    CHECK(stalled.err.find("no first token") != std::string::npos);
    CHECK(stalled.err.find("timed out") != std::string::npos);
    no_secret_in(stalled);

    auth.malform_next(-1, testing::malformation::html);
    auto html = run_tool("-n 10 " + api.url("/"), env_for(auth));
    CHECK(html.status == 2);
    CHECK(html.err.find("not JSON") != std::string::npos);
    no_secret_in(html);

    // a server that echoes the request (and so the secret) back in its error description
    auth.malform_next(-1, testing::malformation::echo_request);
    auto echo = run_tool("-n 10 --auth-method post " + api.url("/"), env_for(auth));
    CHECK(echo.status == 2);
    CHECK(echo.err.find("invalid_request") != std::string::npos);
    CHECK(echo.err.find("***") != std::string::npos); // the echoed secret, masked
    no_secret_in(echo);
}

TEST_CASE("--demo runs against its own servers and exits 0") {
    auto o = run_tool("--demo -d 3 -c 16");
    INFO(o.err);
    CHECK(o.status == 0);
    CHECK(o.out.find("requests in") != std::string::npos);
    CHECK(o.out.find("resent after a 401") != std::string::npos);
    CHECK(o.err.empty()); // no progress line when stderr is not a terminal
}

TEST_CASE("-t 2: two event loops share the run and every request succeeds") {
    auto o = run_tool("--demo -t 2 -c 4 -n 200 --json");
    INFO(o.err);
    CHECK(o.status == 0);
    auto v = boost::json::parse(o.out);
    const auto& j = v.as_object();
    CHECK(num(j, "requests") == 200);
    CHECK(num(j, "ok") == 200);
    CHECK(num(j.at("status").as_object(), "200") == 200);
    CHECK(j.at("errors").as_object().empty());
}

TEST_CASE("-R stages: the run sends exactly the requests the ramps schedule, over both event loops") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    // 0 -> 200/s in 0.5 s (50 requests), then 200/s for 0.5 s (100): 150, and the stages end the run.
    auto o = run_tool("-R 200:500ms,200:500ms -c 32 -t 2 --json " + api.url("/json"), env_for(auth));
    INFO(o.err);
    REQUIRE(o.status == 0);
    auto v = boost::json::parse(o.out);
    const auto& j = v.as_object();
    CHECK(num(j, "requests") == 150);
    CHECK(num(j, "ok") == 150);
    CHECK(api.count_status(200) == 150);
    CHECK(auth.token_requests() == 1);
    // A bad schedule is a usage error naming the form expected.
    auto bad = run_tool("-R 100:10 " + api.url("/json"), env_for(auth));
    CHECK(bad.status == 2);
    CHECK(bad.err.find("RATE:LENGTH") != std::string::npos);
}

TEST_CASE("-t above -c is a usage error: every event loop needs a request in flight") {
    auto too_many = run_tool("--demo -t 4 -c 2 -n 10");
    CHECK(too_many.status == 2);
    CHECK(too_many.err.find("-t 4 needs -c 4") != std::string::npos);
    CHECK(std::count(too_many.err.begin(), too_many.err.end(), '\n') == 1);
}

TEST_CASE("a bad -H is refused with exit 2, without echoing the value") {
    // printf makes the control characters (popen's /bin/sh has no $'...').
    const char* bad[] = {R"x(-H "$(printf 'x-api-key: k\r\nX-Evil: 1')")x", R"x(-H "$(printf 'x-api-key: k\nX')")x",
                         R"x(-H "$(printf 'x-api-key: k\001')")x", "-H 'Bad Name: v'", R"x(-H "$(printf 'x\r\ny: v')")x"};
    for (const char* h : bad) {
        CAPTURE(h);
        auto o = run_tool(std::string("--demo -n 1 ") + h);
        CHECK(o.status == 2);
        CHECK(o.err.find("-H") != std::string::npos);
        CHECK(o.err.find("X-Evil") == std::string::npos);
        CHECK(std::count(o.err.begin(), o.err.end(), '\n') == 1);
    }
}

TEST_CASE("--insecure warns on stderr that the token endpoint is unverified too") {
    auto o = run_tool("--demo -n 20 -c 2 --insecure");
    CHECK(o.status == 0);
    CHECK(o.err.find("--insecure") != std::string::npos);
    CHECK(o.err.find("token endpoint") != std::string::npos);
}

TEST_CASE("hosts that do not resolve: exit 2 for the token URL, counted errors for the API") {
    // A label over 63 bytes fails in the resolver itself: no DNS query leaves the machine.
    const std::string nowhere = std::string(64, 'a') + ".invalid";
    auto token = run_tool("-n 5 http://127.0.0.1:9/", "env TOKENFLIGHT_TOKEN_URL=https://" + nowhere +
                                                          "/token?k=v TOKENFLIGHT_CLIENT_ID=x TOKENFLIGHT_CLIENT_SECRET=" +
                                                          client_secret);
    CHECK(token.status == 2); // not 139: no crash
    CHECK(token.err.find("no first token") != std::string::npos);
    CHECK(std::count(token.err.begin(), token.err.end(), '\n') == 1);
    CHECK(token.err.find("k=v") == std::string::npos); // the query is redacted
    no_secret_in(token);

    // User info is refused (credentials go elsewhere), and not repeated in the message.
    auto userinfo = run_tool("-n 5 http://127.0.0.1:9/", "env TOKENFLIGHT_TOKEN_URL=https://user:pw@auth.example/token "
                                                         "TOKENFLIGHT_CLIENT_ID=x TOKENFLIGHT_CLIENT_SECRET=s");
    CHECK(userinfo.status == 2);
    CHECK(userinfo.err.find("bad token URL") != std::string::npos);
    CHECK(userinfo.err.find("user:pw") == std::string::npos);

    testing::fake_auth_server auth(auth_options());
    auto api = run_tool("-n 20 -c 4 --json https://" + nowhere + "/", env_for(auth));
    CHECK(api.status == 1);
    auto v = boost::json::parse(api.out);
    CHECK(num(v.as_object(), "requests") == 20);
    CHECK(num(v.as_object().at("errors").as_object(), "host_not_found") == 20);
}

TEST_CASE("peers that never stop sending: the tool ends with typed errors and bounded memory") {
    // Baseline: the same run against a well-behaved server.
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server api(auth);
    testing::http_server plain([](const http::request&, http::response& res) -> boost::asio::awaitable<testing::reply> {
        res.body() = "ok";
        co_return testing::reply::send;
    });
    const auto baseline = run_tool_measured("--no-token -n 1 -c 1 --json " + plain.base_url() + "/");
    REQUIRE(baseline.status == 0);

    const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct endless_case {
        const char* what;
        test::hostile_server::script script;
        const char* error_kind;
    };
    const endless_case cases[] = {
        {"endless chunk extension", {chunked + "1;ext=", std::string(4096, 'a')}, "header_too_large"},
        {"endless small chunk extensions", {chunked, "1;e=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n"}, "header_too_large"},
        {"endless trailers", {chunked + "0\r\n", "X-Trailer: aaaaaaaaaaaaaaaaaaaaaa\r\n"}, "header_too_large"},
        {"endless interim responses", {"", "HTTP/1.1 103 Early Hints\r\nLink: " + std::string(2000, 'l') + "\r\n\r\n"},
         "header_too_large"},
        {"endless header", {"HTTP/1.1 200 OK\r\n", "X-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"}, "header_too_large"},
        {"endless status line", {"HTTP/1.1 200 ", std::string(4096, 'a')}, "header_too_large"},
        {"endless body", {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", std::string(4096, 'b')},
         "body_too_large"},
        {"a drip that never ends", {chunked, "1\r\nx\r\n", std::chrono::milliseconds(2)}, "request_timeout"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        test::hostile_server server(c.script);
        auto o = run_tool_measured("--no-token -n 1 -c 1 --timeout 2 --json " + server.url("/"));
        INFO(o.err);
        CHECK(o.status == 1);
        auto v = boost::json::parse(o.out);
        CHECK(num(v.as_object().at("errors").as_object(), c.error_kind) == 1);
        CHECK(o.max_rss_kib < baseline.max_rss_kib + 32 * 1024); // before the fix: gigabytes
    }

    // The same from the token endpoint: no first token, exit 2, memory bounded.
    test::hostile_server token_endpoint({chunked + "1;ext=", std::string(4096, 'a')});
    auto t = run_tool_measured("-n 1 --timeout 2 " + api.url("/"), "env TOKENFLIGHT_TOKEN_URL=" + token_endpoint.url("/token") +
                                                                       " TOKENFLIGHT_CLIENT_ID=x TOKENFLIGHT_CLIENT_SECRET=s");
    CHECK(t.status == 2);
    CHECK(t.err.find("no first token") != std::string::npos);
    CHECK(t.max_rss_kib < baseline.max_rss_kib + 32 * 1024);

    // A token endpoint that drips forever: the first-token wait ends by --timeout, and the
    // operation that outlives the wait writes into state it owns (an ASan build checks this).
    test::hostile_server drip({"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", "{", std::chrono::milliseconds(5)});
    auto d = run_tool("-n 1 --timeout 0.5 " + api.url("/"), "env TOKENFLIGHT_TOKEN_URL=" + drip.url("/token") +
                                                                  " TOKENFLIGHT_CLIENT_ID=x TOKENFLIGHT_CLIENT_SECRET=s");
    CHECK(d.status == 2);
    CHECK(d.err.find("no first token") != std::string::npos);
}
