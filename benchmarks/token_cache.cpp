// The token cache's hot path: the cost of getting a fresh token.
//
//   bench_token_cache [--benchmark_format=json]
//
// Each benchmark gets 100,000 tokens per iteration, spread over T threads (T = 1, 2), from one
// shared token_source whose token is cached (the in-process token server is only hit once):
//   TryGet        token_source::try_get_token(), the synchronous path the client uses
//   Callback      async_get_token with a plain callback (each callback asks for the next token)
//   Awaitable     co_await async_get_token(use_awaitable) in a loop, one coroutine per thread
//   *Refreshing   the same while a background refresh is in flight (stale-but-valid token, the
//                 token server stalled)
// Reported: time per get (ns/get) as the "per_get" counter.
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace tf = tokenflight;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t gets_per_iteration = 100'000;

// One token source with a cached token, and an io_context run by `threads` threads.
struct fixture {
    explicit fixture(int threads, bool refreshing) : ioc(threads), guard(asio::make_work_guard(ioc)) {
        for (int i = 0; i < threads; ++i) runners.emplace_back([this] { ioc.run(); });
        tf::token_source_options o;
        if (refreshing) {
            // Stale as soon as it arrives; the next get starts a refresh that the stalled server
            // never answers, so every get below runs with a refresh in flight.
            o.refresh.refresh_ahead = std::chrono::hours(1);
            o.request_timeout = 600s;
            o.backoff.deadline = 600s;
        }
        source.emplace(ioc.get_executor(), server.client_credentials(), o);
        source->async_get_token(asio::use_future).get();
        if (refreshing) {
            server.set_latency(600s);
            source->try_get_token(); // starts the background refresh
            while (server.token_requests() < 2) std::this_thread::sleep_for(1ms);
        }
    }
    ~fixture() {
        source->close();
        guard.reset();
        ioc.stop();
        for (auto& t : runners) t.join();
    }
    tf::testing::fake_auth_server server;
    asio::io_context ioc;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::vector<std::thread> runners;
    std::optional<tf::token_source> source;
};

void report(benchmark::State& state) {
    state.SetItemsProcessed(state.iterations() * gets_per_iteration);
    state.counters["per_get"] = benchmark::Counter(static_cast<double>(state.iterations() * gets_per_iteration),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void try_get(benchmark::State& state, bool refreshing) {
    const int threads = static_cast<int>(state.range(0));
    fixture f(1, refreshing);
    for (auto _ : state) {
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t)
            workers.emplace_back([&] {
                for (std::int64_t i = 0; i < gets_per_iteration / threads; ++i) {
                    auto tok = f.source->try_get_token();
                    benchmark::DoNotOptimize(tok);
                }
            });
        for (auto& w : workers) w.join();
    }
    report(state);
}

// A chain of callbacks: each completion asks for the next token until its share is done.
struct chain {
    tf::token_source& source;
    std::int64_t left;
    std::promise<void>& done;
    void operator()(tf::error_code, tf::access_token t) {
        benchmark::DoNotOptimize(t);
        if (--left == 0) return done.set_value();
        source.async_get_token(std::move(*this));
    }
};

void callback(benchmark::State& state, bool refreshing) {
    const int threads = static_cast<int>(state.range(0));
    fixture f(threads, refreshing);
    for (auto _ : state) {
        std::vector<std::promise<void>> done(static_cast<std::size_t>(threads));
        for (int t = 0; t < threads; ++t)
            f.source->async_get_token(chain{*f.source, gets_per_iteration / threads, done[static_cast<std::size_t>(t)]});
        for (auto& d : done) d.get_future().wait();
    }
    report(state);
}

void awaitable(benchmark::State& state, bool refreshing) {
    const int threads = static_cast<int>(state.range(0));
    fixture f(threads, refreshing);
    for (auto _ : state) {
        std::vector<std::future<void>> done;
        for (int t = 0; t < threads; ++t)
            done.push_back(asio::co_spawn(
                f.ioc,
                [&]() -> asio::awaitable<void> {
                    for (std::int64_t i = 0; i < gets_per_iteration / threads; ++i) {
                        auto tok = co_await f.source->async_get_token(asio::use_awaitable);
                        benchmark::DoNotOptimize(tok);
                    }
                },
                asio::use_future));
        for (auto& d : done) d.get();
    }
    report(state);
}

} // namespace

BENCHMARK_CAPTURE(try_get, Fresh, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(try_get, Refreshing, true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(callback, Fresh, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(callback, Refreshing, true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(awaitable, Fresh, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(awaitable, Refreshing, true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
