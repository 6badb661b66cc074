// tokenflight-load: an OAuth-aware HTTP load generator. See --help, and README.md.
#include "config.hpp"
#include "runner.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace tf = tokenflight;
using namespace std::chrono_literals;

namespace {

constexpr int exit_ok = 0, exit_not_all_2xx = 1, exit_usage = 2;

int fail_setup(const std::string& message) {
    std::cerr << "tokenflight-load: " << message << '\n';
    return exit_usage;
}

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

std::string fmt_ms(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3fms", ms(d));
    return buf;
}

// The in-process server's client, keeping --scope and --auth-method from the command line.
void use_server_client(tf::credentials& creds, const tf::testing::fake_auth_server& server) {
    auto c = server.client_credentials();
    creds.token_url = std::move(c.token_url);
    creds.client_id = std::move(c.client_id);
    creds.client_secret = std::move(c.client_secret);
}

struct demo_servers {
    tf::testing::fake_auth_server auth;
    tf::testing::fake_api_server api;
    static tf::testing::fake_auth_server::options auth_options(std::chrono::seconds lifetime) {
        tf::testing::fake_auth_server::options o;
        o.lifetime = lifetime;
        o.client_id = "demo-client";
        o.client_secret = "demo-secret";
        return o;
    }
    static tf::testing::fake_api_server::options api_options() {
        tf::testing::fake_api_server::options o;
        o.api_key = "demo-api-key";
        o.threads = 2;
        return o;
    }
    explicit demo_servers(std::chrono::seconds lifetime) : auth(auth_options(lifetime)), api(auth, api_options()) {}
};

// The workers' completion token: awaited, as a tuple, with the loop's io_context executor bound to
// the handler. The coroutine's own executor is an any_io_executor, which the library's type-erased
// handler would convert to an any_completion_executor on every request (a heap allocation); the
// io_context's executor fits in it as it is.
auto completion_token(asio::io_context::executor_type ex) {
    return asio::bind_executor(ex, asio::as_tuple(asio::use_awaitable));
}

int run(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    auto parsed = tf::load::parse_command_line(args, [](const char* n) { return std::getenv(n); },
                                               std::thread::hardware_concurrency());
    if (auto* e = std::get_if<tf::load::usage_error>(&parsed)) return fail_setup(e->message);
    auto cfg = std::move(std::get<tf::load::config>(parsed));
    if (cfg.help) {
        std::cout << tf::load::usage();
        return exit_ok;
    }

    std::unique_ptr<demo_servers> demo;
    if (cfg.demo) {
        demo = std::make_unique<demo_servers>(cfg.demo_token_lifetime);
        cfg.url = demo->api.url("/demo");
        use_server_client(cfg.creds, demo->auth);
        cfg.headers.emplace_back("x-api-key", "demo-api-key");
        if (!cfg.json)
            std::cout << "demo: authorization server " << cfg.creds.token_url << ", API " << cfg.url << " ("
                      << cfg.demo_token_lifetime.count() << " s tokens, every token revoked "
                      << (cfg.demo_revoke_every ? "every " + std::to_string(cfg.demo_revoke_every->count()) + " ms"
                                                : std::string("half-way"))
                      << ")\n";
    }
    // -t N: N event loops as wrk's threads, each an io_context run by exactly one thread, with
    // its own client (or bare pool) and so its own connections. The token source is one, on
    // loop 0's executor, shared by every loop's client.
    const int loops = cfg.threads;
    std::vector<std::unique_ptr<asio::io_context>> iocs;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (int k = 0; k < loops; ++k) {
        iocs.push_back(std::make_unique<asio::io_context>(1));
        guards.push_back(asio::make_work_guard(*iocs.back()));
    }
    std::vector<std::thread> threads;
    for (auto& ioc : iocs) threads.emplace_back([ctx = ioc.get()] { ctx->run(); });
    struct joiner {
        std::vector<std::unique_ptr<asio::io_context>>& iocs;
        std::vector<std::thread>& threads;
        std::vector<asio::executor_work_guard<asio::io_context::executor_type>>& guards;
        ~joiner() {
            for (auto& g : guards) g.reset();
            for (auto& ioc : iocs) ioc->stop();
            for (auto& t : threads) t.join();
        }
    } join_at_exit{iocs, threads, guards};

    if (cfg.insecure)
        std::cerr << "tokenflight-load: warning: --insecure: TLS certificates are not verified, for the API and the "
                     "token endpoint alike\n";
    tf::http::tls_options tls;
    tls.verify_peer = !cfg.insecure;
    tls.ca_file = cfg.cacert;

    std::unique_ptr<tf::testing::fake_auth_server> token_server;
    if (cfg.demo_token_server) {
        token_server = std::make_unique<tf::testing::fake_auth_server>();
        use_server_client(cfg.creds, *token_server);
    }

    tf::http::pool_options po;
    po.request_timeout = cfg.timeout;
    po.queue_timeout = cfg.timeout;
    po.tls = tls;
    // --max-connections is for the whole run: each loop's pool gets its share, as with -c.
    const int max_connections = cfg.max_connections.value_or(cfg.concurrency);
    const auto pool_options_for = [&](int k) {
        auto o = po;
        o.max_connections_per_origin =
            static_cast<std::size_t>(tf::load::share(max_connections, k, loops));
        return o;
    };

    std::unique_ptr<tf::token_source> source;
    struct event_loop {
        std::unique_ptr<tf::client> client;
        std::unique_ptr<tf::http::connection_pool> bare_pool;
        tf::load::send_function send;
    };
    std::vector<event_loop> per_loop(static_cast<std::size_t>(loops));
    const auto executor_of = [&](int k) { return iocs[static_cast<std::size_t>(k)]->get_executor(); };
    if (cfg.no_token) {
        for (int k = 0; k < loops; ++k) {
            auto& l = per_loop[static_cast<std::size_t>(k)];
            const auto lpo = pool_options_for(k);
            l.bare_pool = std::make_unique<tf::http::connection_pool>(executor_of(k), lpo);
            // Prepared once per loop: every send writes the same head and body, nothing
            // serialised again.
            auto prepared =
                tf::http::make_prepared_request(cfg.method, cfg.url, cfg.headers, cfg.body, lpo.user_agent);
            if (!prepared) return fail_setup("cannot prepare the request: " + prepared.error().message());
            l.send = [pool = l.bare_pool.get(), req = std::move(*prepared), ex = executor_of(k)] {
                return pool->async_send_brief(req, tf::http::send_options{}, completion_token(ex));
            };
        }
    } else {
        tf::token_source_options so;
        so.request_timeout = cfg.timeout;
        so.backoff.deadline = cfg.timeout;
        so.tls = tls;
        const std::string token_url = tf::http::redact_url(cfg.creds.token_url);
        try {
            source = std::make_unique<tf::token_source>(iocs.front()->get_executor(), std::move(cfg.creds), so);
        } catch (const boost::system::system_error& e) {
            return fail_setup("cannot use token URL '" + token_url + "': " + e.code().message());
        }

        // The first token, before any load: a run against refused credentials would only measure
        // errors. The diagnostics and the outcome live in state the completion handler shares:
        // if the wait below gives up, the operation still completes later and writes into them.
        struct first_token {
            tf::diagnostics diag;
            std::promise<tf::error_code> done;
        };
        auto first = std::make_shared<first_token>();
        auto outcome = first->done.get_future();
        source->async_get_token(first->diag, [first](tf::error_code ec, const tf::access_token&) {
            first->done.set_value(ec);
        });
        if (outcome.wait_for(cfg.timeout + 2s) != std::future_status::ready)
            return fail_setup("no first token from " + token_url + ": no answer within --timeout");
        if (const auto ec = outcome.get()) {
            std::string detail = first->diag.to_string();
            return fail_setup("no first token from " + token_url + ": " + ec.message() +
                              (detail.empty() ? "" : " (" + detail + ")"));
        }

        for (int k = 0; k < loops; ++k) {
            auto& l = per_loop[static_cast<std::size_t>(k)];
            tf::client_options co;
            co.auth_scheme = cfg.auth_scheme;
            co.pool = pool_options_for(k);
            l.client = std::make_unique<tf::client>(executor_of(k), *source, co);
            // Prepared once per loop: the Authorization line is rebuilt only when the token changes.
            auto prepared = l.client->prepare(cfg.method, cfg.url, cfg.headers, cfg.body);
            if (!prepared) return fail_setup("cannot prepare the request: " + prepared.error().message());
            l.send = [c = l.client.get(), req = std::move(*prepared), ex = executor_of(k)] {
                return c->async_send_brief(req, completion_token(ex));
            };
        }
    }

    tf::load::plan p;
    p.concurrency = cfg.concurrency;
    p.requests = cfg.requests;
    if (cfg.duration) p.duration = *cfg.duration;
    p.rate = cfg.rate;

    tf::load::tally tally;
    std::mutex m;
    std::condition_variable cv;
    bool finished = false;
    std::atomic<int> loops_running{loops};
    const auto start = tf::clock::now();
    // Each loop runs its slice of the run (its share of -c, requests k, k + N, ... of the global
    // sequence and schedule) into the one tally; the run ends when the last loop's workers do.
    for (int k = 0; k < loops; ++k)
        tf::load::start_load(executor_of(k), per_loop[static_cast<std::size_t>(k)].send,
                             tf::load::plan_for_loop(p, k, loops, start), tally, [&] {
                                 if (loops_running.fetch_sub(1) != 1) return;
                                 std::lock_guard l(m);
                                 finished = true;
                                 cv.notify_all();
                             });

    // --demo: revoke every token half-way (or every --demo-revoke-every), to show one refresh
    // serving a whole storm of 401s.
    std::uint64_t revocations = 0;
    auto next_revocation = cfg.demo_revoke_every ? start + *cfg.demo_revoke_every
                           : cfg.duration        ? start + *cfg.duration / 2
                                                 : tf::clock::time_point::max();
    const bool progress = !cfg.json && ::isatty(STDERR_FILENO);
    {
        std::unique_lock l(m);
        while (!finished) {
            cv.wait_for(l, demo ? 50ms : 1s);
            if (demo) {
                const bool due = cfg.demo_revoke_every || !cfg.requests
                                     ? tf::clock::now() >= next_revocation
                                     : revocations == 0 && tally.done.load() >= *cfg.requests / 2;
                if (due) {
                    demo->api.revoke_all();
                    ++revocations;
                    next_revocation = cfg.demo_revoke_every ? next_revocation + *cfg.demo_revoke_every
                                                            : tf::clock::time_point::max();
                }
            }
            if (progress) {
                const double secs = std::chrono::duration<double>(tf::clock::now() - start).count();
                std::fprintf(stderr, "\r%llu done, %.0f req/s, %llu errors   ",
                             static_cast<unsigned long long>(tally.done.load()), tally.done.load() / std::max(secs, 1e-9),
                             static_cast<unsigned long long>(tally.failed.load()));
            }
        }
    }
    const double duration_s = std::chrono::duration<double>(tf::clock::now() - start).count();
    if (progress) std::fprintf(stderr, "\r%60s\r", "");

    const auto requests = tally.done.load();
    const auto ok = tally.ok.load();
    const auto token_fetches = source ? source->stats().token_requests : 0;
    std::uint64_t resends = 0;
    for (const auto& l : per_loop)
        if (l.client) resends += l.client->stats().resends_after_401;
    const double rps = requests / std::max(duration_s, 1e-9);
    const auto& h = tally.latency;

    if (cfg.json) {
        // Written by hand: fixed-point numbers read better than Boost.JSON's exponent form.
        std::string out = "{\"requests\":" + std::to_string(requests) + ",\"ok\":" + std::to_string(ok) + ",\"status\":{";
        const char* sep = "";
        for (std::size_t s = 0; s < tally.status.size(); ++s)
            if (auto n = tally.status[s].load()) {
                out += sep + ("\"" + std::to_string(s) + "\":" + std::to_string(n));
                sep = ",";
            }
        out += "},\"errors\":{";
        sep = "";
        {
            std::lock_guard l(tally.errors_mutex);
            for (const auto& [kind, n] : tally.errors) {
                out += sep + ("\"" + kind + "\":" + std::to_string(n));
                sep = ",";
            }
        }
        char tail[512];
        std::snprintf(tail, sizeof tail,
                      "},\"token_fetches\":%llu,\"retries_after_401\":%llu,\"duration_s\":%.3f,\"rps\":%.1f,"
                      "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}",
                      static_cast<unsigned long long>(token_fetches), static_cast<unsigned long long>(resends),
                      duration_s, rps, ms(h.quantile(0.50)), ms(h.quantile(0.90)), ms(h.quantile(0.99)), ms(h.max()));
        std::cout << out << tail << std::endl;
    } else {
        std::printf("%llu requests in %.2fs to %s, %d in flight, %d thread%s\n",
                    static_cast<unsigned long long>(requests), duration_s, tf::http::redact_url(cfg.url).c_str(),
                    cfg.concurrency,
                    cfg.threads, cfg.threads == 1 ? "" : "s");
        std::printf("  latency     p50 %s   p90 %s   p99 %s   max %s\n", fmt_ms(h.quantile(0.5)).c_str(),
                    fmt_ms(h.quantile(0.9)).c_str(), fmt_ms(h.quantile(0.99)).c_str(), fmt_ms(h.max()).c_str());
        std::printf("  requests/s  %.1f\n", rps);
        std::printf("  status     ");
        for (std::size_t s = 0; s < tally.status.size(); ++s)
            if (auto n = tally.status[s].load()) std::printf(" %zu: %llu", s, static_cast<unsigned long long>(n));
        std::printf("\n");
        {
            std::lock_guard l(tally.errors_mutex);
            if (!tally.errors.empty()) {
                std::printf("  errors     ");
                for (const auto& [kind, n] : tally.errors)
                    std::printf(" %s: %llu", kind.c_str(), static_cast<unsigned long long>(n));
                std::printf("\n");
            }
        }
        std::printf("  tokens      %llu fetched, %llu requests resent after a 401\n",
                    static_cast<unsigned long long>(token_fetches), static_cast<unsigned long long>(resends));
        std::fflush(stdout);
    }
    return ok == requests ? exit_ok : exit_not_all_2xx;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "tokenflight-load: " << e.what() << '\n';
        return exit_usage;
    }
}
