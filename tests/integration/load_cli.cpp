// tokenflight-load as a user runs it: a separate process, against in-process servers whose own
// counters the tool's report must match.
#include "support.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
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
    const auto err_path = std::filesystem::temp_directory_path() /
                          ("tokenflight-load-stderr-" + std::to_string(::getpid()) + ".txt");
    const std::string cmd = env + " " + load_exe + " " + args + " 2>" + err_path.string();
    outcome o;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, p)) o.out.append(buf, n);
    const int raw = ::pclose(p);
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    std::ifstream f(err_path);
    std::stringstream ss;
    ss << f.rdbuf();
    o.err = ss.str();
    std::filesystem::remove(err_path);
    return o;
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
