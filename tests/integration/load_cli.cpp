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
#include <map>
#include <mutex>
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

TEST_CASE("--demo --h2c: every request is a stream of one HTTP/2 connection, and the summary says so") {
    auto o = run_tool("--demo --h2c -c 64 -n 2000 --json");
    INFO(o.err);
    REQUIRE(o.status == 0);
    auto v = boost::json::parse(o.out);
    const auto& j = v.as_object();
    CHECK(num(j, "ok") == 2000);
    CHECK(j.at("protocol").as_string() == "HTTP/2");
    CHECK(num(j, "http2_connections") == 1);
    CHECK(num(j, "http2_requests") == 2000 + num(j, "retries_after_401"));
    auto text = run_tool("--demo --h2c -c 8 -n 100");
    CHECK(text.out.find("protocol    HTTP/2: ") != std::string::npos);
    auto plain = run_tool("--demo -c 8 -n 100");
    CHECK(plain.out.find("protocol") == std::string::npos); // HTTP/1.1 runs say nothing new
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

namespace {

// The CSV's rows as strings, header first.
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        std::vector<std::string> cells;
        std::istringstream fields(line);
        for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
        rows.push_back(std::move(cells));
    }
    return rows;
}

std::uint64_t sum_of(const boost::json::array& rows, const char* key) {
    std::uint64_t n = 0;
    for (const auto& r : rows) n += num(r.as_object(), key);
    return n;
}

} // namespace

TEST_CASE("the timeline, the JSON, the CSV and the HTML report agree with each other and with the servers") {
    testing::fake_auth_server auth(auth_options());
    testing::fake_api_server::options ao;
    ao.api_key = "API-KEY-7f3a-must-not-leak";
    testing::fake_api_server api(auth, ao);
    std::atomic<bool> stop{false};
    std::thread revoker([&] {
        while (!stop && api.requests() < 2500) std::this_thread::sleep_for(1ms);
        if (!stop) api.revoke_all();
    });
    test::temp_file csv("", "tokenflight-load-timeline"), html("", "tokenflight-load-report");
    const std::string api_key = "API-KEY-7f3a-must-not-leak";
    // 2,000 requests/s for 5,000 requests: three rows at least, the revocation in the second.
    auto o = run_tool("-n 5000 -R 2000 -c 16 -t 2 --json -H 'x-api-key: " + api_key + "' --timeline " + csv.path() +
                          " --report " + html.path() + ' ' + api.url("/json"),
                      env_for(auth));
    stop = true;
    revoker.join();
    INFO(o.err);
    REQUIRE(o.status == 0);
    const auto v = boost::json::parse(o.out);
    const auto& j = v.as_object();
    const auto& rows = j.at("timeline").as_array();
    REQUIRE(rows.size() >= 3);

    // Row by row, the totals: as the JSON's summary says, and as the servers counted.
    CHECK(sum_of(rows, "requests") == 5000);
    CHECK(sum_of(rows, "status_2xx") == api.count_status(200));
    CHECK(sum_of(rows, "errors") == 0);
    CHECK(sum_of(rows, "token_fetches") == auth.token_requests());
    CHECK(num(j, "token_fetches") == auth.token_requests());
    CHECK(sum_of(rows, "unauthorized") == api.count_status(401));
    CHECK(sum_of(rows, "resends") == num(j, "retries_after_401"));
    CHECK(api.count_status(401) >= 1);
    double last_end = 0;
    for (const auto& r : rows) {
        const auto& row = r.as_object();
        CHECK(row.at("end_s").to_number<double>() > last_end);
        last_end = row.at("end_s").to_number<double>();
        if (num(row, "requests")) {
            CHECK(row.at("p50_ms").to_number<double>() <= row.at("p99_ms").to_number<double>());
            CHECK(row.at("p99_ms").to_number<double>() <= row.at("max_ms").to_number<double>());
        }
    }
    CHECK(last_end == doctest::Approx(j.at("duration_s").to_number<double>()).epsilon(0.01));

    // The token story: every token request marked, every 401 in a storm.
    const auto& story = j.at("token_story").as_object();
    CHECK(story.at("fetches").as_array().size() == auth.token_requests());
    std::uint64_t storm_401s = 0;
    for (const auto& s : story.at("storms_401").as_array()) storm_401s += num(s.as_object(), "count");
    CHECK(storm_401s == api.count_status(401));

    // The distribution holds every request, and its p99 is in the bucket the summary names.
    const auto& buckets = j.at("latency_distribution").as_object().at("buckets").as_array();
    std::uint64_t in_buckets = 0;
    for (const auto& b : buckets) in_buckets += b.as_array()[2].to_number<std::uint64_t>();
    CHECK(in_buckets == 5000);
    const double p99_ns = j.at("latency_ms").as_object().at("p99").to_number<double>() * 1e6;
    std::uint64_t seen = 0;
    for (const auto& b : buckets) {
        const auto& triple = b.as_array();
        seen += triple[2].to_number<std::uint64_t>();
        if (seen >= 4950) { // the 4,950th of 5,000 values
            CHECK(p99_ns >= triple[0].to_number<double>() - 1);
            CHECK(p99_ns <= triple[1].to_number<double>());
            break;
        }
    }

    // The CSV is the JSON's timeline, cell by cell.
    const auto table = csv_rows(csv.read());
    REQUIRE(table.size() == rows.size() + 1);
    const auto& header = table.front();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& row = rows[i].as_object();
        REQUIRE(table[i + 1].size() == header.size());
        for (std::size_t c = 0; c < header.size(); ++c) {
            INFO("row " << i << " column " << header[c]);
            // Both printed from the same figure: the same decimal text, so the same double.
            CHECK(std::stod(table[i + 1][c]) == row.at(header[c]).to_number<double>());
        }
    }

    // The HTML report names the same totals, draws its charts, and carries no secret or key.
    const auto page = html.read();
    CHECK(page.find("5,000 requests") != std::string::npos);
    for (const char* chart : {"throughput", "latency", "distribution", "status", "tokens", "connections"})
        CHECK(page.find(std::string("data-chart=\"") + chart + '"') != std::string::npos);
    CHECK(page.find("<script") == std::string::npos);
    CHECK(page.find(client_secret) == std::string::npos);
    CHECK(page.find(api_key) == std::string::npos); // the x-api-key value
    CHECK(page.find("x-api-key") != std::string::npos);
    no_secret_in(o);
}

TEST_CASE("without the token layer, the 401s returned are the timeline's and the story's alike") {
    testing::http_server api([](const http::request&, http::response& res) -> boost::asio::awaitable<testing::reply> {
        res.result(http::status::unauthorized);
        co_return testing::reply::send;
    });
    auto o = run_tool("--no-token -n 40 -c 4 -t 1 --json " + api.base_url() + "/");
    CHECK(o.status == 1);
    const auto v = boost::json::parse(o.out);
    const auto& j = v.as_object();
    CHECK(sum_of(j.at("timeline").as_array(), "unauthorized") == 40);
    CHECK(sum_of(j.at("timeline").as_array(), "status_4xx") == 40);
    std::uint64_t storm_401s = 0;
    for (const auto& s : j.at("token_story").as_object().at("storms_401").as_array())
        storm_401s += num(s.as_object(), "count");
    CHECK(storm_401s == 40);
    CHECK(j.at("token_story").as_object().at("fetches").as_array().empty());
}

TEST_CASE("--targets: weighted turns over three requests, each as the file says, broken down per target") {
    testing::fake_auth_server auth(auth_options());
    struct seen {
        std::mutex m;
        std::map<std::string, std::uint64_t> by_path;
        std::uint64_t tagged = 0, bodies_right = 0, unauthorized = 0;
    } s;
    const std::string body = R"({"order":42})";
    constexpr const char* query_key = "TARGET-KEY-must-not-leak";
    testing::http_server api([&](const http::request& req, http::response& res) -> boost::asio::awaitable<testing::reply> {
        std::lock_guard l(s.m);
        const std::string target(req.target());
        const std::string path = target.substr(0, target.find('?'));
        if (path == "/c" && target != "/c?api_key=" + std::string(query_key)) ++s.unauthorized;
        ++s.by_path[std::string(req.method_string()) + ' ' + path];
        if (req[http::field::authorization].substr(0, 7) != "Bearer ") ++s.unauthorized;
        if (req["x-tag"] == "one") ++s.tagged;
        if (req.body() == body && req[http::field::content_type] == "application/json") ++s.bodies_right;
        res.result(path == "/c" ? http::status::service_unavailable : http::status::ok);
        co_return testing::reply::send;
    });
    test::temp_file body_file(body, "tokenflight-load-body");
    test::temp_file targets("# three targets, the second and third not separated by a blank line\n"
                            "GET " + api.base_url() + "/a\nX-Tag: one\n\n"
                            "POST " + api.base_url() + "/b\r\nContent-Type: application/json\r\n@" + body_file.path() + "\n"
                            "GET " + api.base_url() + "/c?api_key=" + query_key + "\n",
                            "tokenflight-load-targets");
    auto o = run_tool("-n 500 -c 4 -t 2 --json --targets " + targets.path() + " --weights 3,1,1", env_for(auth));
    INFO(o.err);
    CHECK(o.status == 1); // /c answers 503
    {
        std::lock_guard l(s.m);
        CHECK(s.by_path["GET /a"] == 300);
        CHECK(s.by_path["POST /b"] == 100);
        CHECK(s.by_path["GET /c"] == 100);
        CHECK(s.by_path.size() == 3);
        CHECK(s.tagged == 300);
        CHECK(s.bodies_right == 100);
        CHECK(s.unauthorized == 0);
    }
    const auto v = boost::json::parse(o.out);
    const auto& per_target = v.as_object().at("targets").as_array();
    REQUIRE(per_target.size() == 3);
    const std::uint64_t requests[] = {300, 100, 100}, ok[] = {300, 100, 0};
    for (std::size_t k = 0; k < 3; ++k) {
        const auto& t = per_target[k].as_object();
        CHECK(num(t, "requests") == requests[k]);
        CHECK(num(t, "ok") == ok[k]);
        CHECK(num(t, "errors") == 0);
    }
    CHECK(per_target[1].as_object().at("name").as_string() == "POST " + api.base_url() + "/b");
    CHECK(o.out.find(query_key) == std::string::npos); // the URL's query is not shown
    CHECK(auth.token_requests() == 1);

    // The text summary and the report break it down the same way, and show no query either.
    test::temp_file html("", "tokenflight-load-report");
    auto text = run_tool("-n 50 -c 2 --targets " + targets.path() + " --report " + html.path(), env_for(auth));
    CHECK(text.out.find("3 targets") != std::string::npos);
    CHECK(text.out.find("target 3    GET " + api.base_url() + "/c?***: 16 requests, 0 2xx") != std::string::npos);
    const auto page = html.read();
    CHECK(page.find("<h2>Targets</h2>") != std::string::npos);
    CHECK(page.find("<td>3</td><td>GET " + api.base_url() + "/c?***</td>") != std::string::npos);
    for (const auto& shown : {text.out, text.err, page}) CHECK(shown.find(query_key) == std::string::npos);

    // A bad file is a usage error naming the line; the URL is then not wanted.
    test::temp_file bad("GET " + api.base_url() + "/a\nX-Key: secret\rvalue\n", "tokenflight-load-targets");
    auto refused = run_tool("-n 1 --targets " + bad.path(), env_for(auth));
    CHECK(refused.status == 2);
    CHECK(refused.err.find(":2:") != std::string::npos);
    CHECK(refused.err.find("secret") == std::string::npos);
    auto both = run_tool("-n 1 --targets " + targets.path() + ' ' + api.base_url() + "/a", env_for(auth));
    CHECK(both.status == 2);
    CHECK(both.err.find("not both") != std::string::npos);
}

TEST_CASE("--targets with '# tokenflight-scope:' lines: one token source per scope, each target sent with its own") {
    struct seen {
        std::mutex m;
        std::map<std::string, std::uint64_t> token_requests; // by scope asked for
        std::map<std::string, std::uint64_t> right_token, wrong_token; // by path
    } s;
    // The authorization server and the API in one: a token names the scope it was issued for.
    testing::http_server server([&](const http::request& req, http::response& res) -> boost::asio::awaitable<testing::reply> {
        std::lock_guard l(s.m);
        const std::string target(req.target());
        if (target == "/token") {
            std::string scope = "?";
            for (const char* known : {"scope=read", "scope=admin", "scope=base"})
                if (req.body().find(known) != std::string::npos) scope = std::string(known).substr(6);
            ++s.token_requests[scope];
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"access_token":"tok-)" + scope + R"(","token_type":"Bearer","expires_in":3600})";
            co_return testing::reply::send;
        }
        const std::string expected = target == "/r" ? "read" : target == "/a" ? "admin" : "base";
        ++(req[http::field::authorization] == "Bearer tok-" + expected ? s.right_token : s.wrong_token)[target];
        co_return testing::reply::send;
    });
    test::temp_file targets("GET " + server.base_url() + "/r\n# tokenflight-scope: read\n"
                            "GET " + server.base_url() + "/a\n# tokenflight-scope: admin\n"
                            "GET " + server.base_url() + "/d\n",
                            "tokenflight-load-targets");
    auto o = run_tool("-n 300 -c 6 -t 2 --json --scope base --targets " + targets.path(),
                      "env TOKENFLIGHT_TOKEN_URL=" + server.base_url() + "/token TOKENFLIGHT_CLIENT_ID=load-client "
                      "TOKENFLIGHT_CLIENT_SECRET=" + client_secret);
    INFO(o.err);
    CHECK(o.status == 0);
    std::lock_guard l(s.m);
    CHECK(s.token_requests == std::map<std::string, std::uint64_t>{{"admin", 1}, {"base", 1}, {"read", 1}});
    CHECK(s.right_token == std::map<std::string, std::uint64_t>{{"/a", 100}, {"/d", 100}, {"/r", 100}});
    CHECK(s.wrong_token.empty());
    const auto v = boost::json::parse(o.out);
    CHECK(num(v.as_object(), "token_fetches") == 3);
    const auto& per_target = v.as_object().at("targets").as_array();
    REQUIRE(per_target.size() == 3);
    CHECK(per_target[0].as_object().at("scope").as_string() == "read");
    CHECK_FALSE(per_target[2].as_object().contains("scope"));
    no_secret_in(o);
}
