// 401 storms and memory per request in flight.
//
//   bench_storm [N ...]        (default: 1000 10000 50000)
//
// The fake authorization server and API run in a child process (so that this process's RSS is
// the client's alone); the API holds every request 20 ms. For each N, two runs:
//   plain  N requests launched at once with a valid token
//   storm  every token revoked first, then N requests launched at once: each gets a 401, and one
//          token request must serve them all
// Reported per run: token requests, time to drain, peak RSS and peak RSS per request in flight,
// as one JSON object per line on stdout.
#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <unistd.h>
#include <sys/wait.h>

namespace asio = boost::asio;
namespace tf = tokenflight;
using namespace std::chrono_literals;

namespace {

// KiB from /proc/self/status
long status_kib(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string k;
    long v = 0;
    std::string unit;
    while (f >> k) {
        if (k == key) {
            f >> v;
            return v;
        }
        std::getline(f, unit);
    }
    return -1;
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

int run_servers() {
    tf::testing::fake_auth_server::options ao;
    tf::testing::fake_auth_server auth(ao);
    tf::testing::fake_api_server::options po;
    po.latency = 20ms;
    po.control_endpoint = true;
    po.threads = 1;
    tf::testing::fake_api_server api(auth, po);
    std::cout << "READY " << auth.token_url() << ' ' << api.url("/") << std::endl;
    // Until the parent closes our stdin.
    char c;
    while (std::cin.get(c)) {
    }
    return 0;
}

struct child {
    pid_t pid = -1;
    int to_child = -1;
    std::string token_url, api_url;
};

child spawn_servers(const char* self) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) std::abort();
    child c;
    c.pid = ::fork();
    if (c.pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::close(in[1]);
        ::close(out[0]);
        ::execl(self, self, "--servers", static_cast<char*>(nullptr));
        std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    c.to_child = in[1];
    std::string line;
    char ch;
    while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
    ::close(out[0]);
    if (line.rfind("READY ", 0) != 0) {
        std::cerr << "bench_storm: servers did not start\n";
        std::exit(2);
    }
    const auto sp = line.find(' ', 6);
    c.token_url = line.substr(6, sp - 6);
    c.api_url = line.substr(sp + 1);
    return c;
}

void run(const child& servers, std::size_t n, bool storm) {
    asio::io_context ioc(1);
    auto guard = asio::make_work_guard(ioc);
    std::thread io([&] { ioc.run(); });

    tf::credentials creds;
    creds.token_url = servers.token_url;
    creds.client_id = "demo-client";
    creds.client_secret = tf::secret("demo-client-secret");
    tf::token_source source(ioc.get_executor(), creds);
    tf::client_options co;
    co.pool.max_connections_per_origin = 256;
    co.pool.queue_timeout = 120s;
    co.pool.request_timeout = 120s;
    tf::client client(ioc.get_executor(), source, co);
    const auto target = tf::http::parse_url(servers.api_url).value();

    auto warm = client.async_get(servers.api_url, asio::use_future);
    if (warm.get().result() != tf::http::status::ok) std::abort();
    if (storm) {
        tf::http::connection_pool control(ioc.get_executor());
        tf::http::request r{tf::http::verb::post, "/__control/revoke", 11};
        auto f = control.async_send(target.origin, std::move(r), asio::use_future);
        if (f.get().result() != tf::http::status::no_content) std::abort();
    }
    const auto tokens_before = source.stats().token_requests;

    reset_peak_rss();
    const long rss_before = status_kib("VmRSS:");
    std::atomic<std::size_t> done{0}, ok{0};
    std::promise<void> all_done;
    const auto start = tf::clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        client.async_send(target, tf::http::request{tf::http::verb::get, "/", 11},
                          [&](tf::error_code ec, tf::http::response res) {
                              if (!ec && res.result() == tf::http::status::ok) ++ok;
                              if (++done == n) all_done.set_value();
                          });
    }
    all_done.get_future().wait();
    const double drain_s = std::chrono::duration<double>(tf::clock::now() - start).count();
    const long peak = status_kib("VmHWM:");
    const auto token_requests = source.stats().token_requests - tokens_before;

    std::printf("{\"mode\":\"%s\",\"in_flight\":%zu,\"ok\":%zu,\"token_requests\":%llu,\"resends_after_401\":%llu,"
                "\"drain_s\":%.3f,\"rss_before_mib\":%.1f,\"peak_rss_mib\":%.1f,\"peak_bytes_per_request\":%.0f}\n",
                storm ? "storm" : "plain", n, ok.load(), static_cast<unsigned long long>(token_requests),
                static_cast<unsigned long long>(client.stats().resends_after_401), drain_s, rss_before / 1024.0,
                peak / 1024.0, (peak - rss_before) * 1024.0 / static_cast<double>(n));
    std::fflush(stdout);
    guard.reset();
    source.close();
    ioc.stop();
    io.join();
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--servers") return run_servers();
    std::vector<std::size_t> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(std::stoul(argv[i]));
    if (sizes.empty()) sizes = {1000, 10000, 50000};
    auto servers = spawn_servers("/proc/self/exe");
    for (auto n : sizes) {
        run(servers, n, false);
        run(servers, n, true);
    }
    ::close(servers.to_child);
    ::waitpid(servers.pid, nullptr, 0);
}
