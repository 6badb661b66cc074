// Heap allocations per request on tokenflight's request paths, counted by a counting global
// operator new and a counting aligned_alloc (the fallback of Asio's per-thread recycling
// allocator when its cache misses), in steady state (after a warm-up that opens the connections and fetches the
// token). Also the program callgrind runs to count instructions per request (instructions.sh).
//
//   bench_request_path MODE URL N [CONCURRENCY]     (default concurrency 64)
//
// MODE:
//   brief    client::async_send_brief of a prepared request (what tokenflight-load sends)
//   prepared client::async_send of a prepared request (full, owning response)
//   get      client::async_get(url) (the general path: a Beast request built per call)
//   pool     connection_pool::async_send_brief of a prepared request with a static
//            Authorization header (the token layer off, as tokenflight-load --no-token)
//
// The token comes from an in-process fake authorization server. The server at URL (nginx in
// instructions.sh) must answer 2xx. Prints one JSON object: mode, requests, allocations in the
// measured window, allocations per request, ok count.
#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>

namespace {
std::atomic<std::uint64_t> allocations{0};
} // namespace

// The counting allocator: every global allocation in the process, from any thread.
void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
// Asio's recycling allocator takes memory from aligned_alloc when its per-thread cache is empty:
// counted too, or cache misses would pass for "no allocation". This definition interposes the C
// library's for the whole process; posix_memalign does the work.
extern "C" void* aligned_alloc(std::size_t align, std::size_t size) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    void* p = nullptr;
    return ::posix_memalign(&p, align < sizeof(void*) ? sizeof(void*) : align, size ? size : 1) == 0 ? p : nullptr;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace asio = boost::asio;
namespace tf = tokenflight;

namespace {

// Runs `total` sends with `concurrency` in flight on one thread: each completion starts the
// next send until `total` were started; the loop stops when the last one completed (idle
// connections keep their pools' sweeper timers pending, so run() would not return by itself).
template <class Send>
std::uint64_t closed_loop(asio::io_context& ioc, Send send, std::uint64_t total, int concurrency) {
    struct state {
        asio::io_context& ioc;
        Send send;
        std::uint64_t started = 0, completed = 0, ok = 0, total = 0;
        void next(const std::shared_ptr<state>& self) {
            if (started == total) return;
            ++started;
            send([self](tf::error_code ec, unsigned status) {
                if (!ec && status / 100 == 2) ++self->ok;
                if (++self->completed == self->total) self->ioc.stop();
                self->next(self);
            });
        }
    };
    auto s = std::make_shared<state>(state{ioc, std::move(send), 0, 0, 0, total});
    for (int i = 0; i < concurrency; ++i) s->next(s);
    ioc.restart();
    ioc.run();
    return s->ok;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: bench_request_path brief|prepared|get|pool URL N [CONCURRENCY]\n");
        return 2;
    }
    const std::string mode = argv[1];
    const std::string url = argv[2];
    const std::uint64_t n = std::strtoull(argv[3], nullptr, 10);
    const int concurrency = argc > 4 ? std::atoi(argv[4]) : 64;

    tf::testing::fake_auth_server auth;
    asio::io_context ioc(1);
    tf::token_source source(ioc.get_executor(), auth.client_credentials());
    tf::client_options co;
    co.pool.max_connections_per_origin = static_cast<std::size_t>(concurrency);
    tf::client client(ioc.get_executor(), source, co);
    tf::http::connection_pool pool(ioc.get_executor(), co.pool);
    auto prepared = client.prepare(tf::http::verb::get, url);
    auto static_prepared =
        tf::http::make_prepared_request(tf::http::verb::get, url, {{"Authorization", "Bearer static-token"}});
    if (!prepared || !static_prepared) {
        std::fprintf(stderr, "bad URL\n");
        return 2;
    }

    auto run = [&](std::uint64_t count) -> std::uint64_t {
        if (mode == "brief")
            return closed_loop(
                ioc,
                [&](auto done) {
                    client.async_send_brief(*prepared, [done](tf::error_code ec, tf::http::brief_response r) {
                        done(ec, r.status);
                    });
                },
                count, concurrency);
        if (mode == "prepared")
            return closed_loop(
                ioc,
                [&](auto done) {
                    client.async_send(*prepared, [done](tf::error_code ec, tf::http::response r) {
                        done(ec, r.result_int());
                    });
                },
                count, concurrency);
        if (mode == "get")
            return closed_loop(
                ioc,
                [&](auto done) {
                    client.async_get(url, [done](tf::error_code ec, tf::http::response r) { done(ec, r.result_int()); });
                },
                count, concurrency);
        if (mode == "pool")
            return closed_loop(
                ioc,
                [&](auto done) {
                    pool.async_send_brief(*static_prepared, tf::http::send_options{},
                                          [done](tf::error_code ec, tf::http::brief_response r) {
                                              done(ec, r.status);
                                          });
                },
                count, concurrency);
        std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
        std::exit(2);
    };

    // Warm-up: connections opened, the token fetched, buffers grown.
    const auto warm = std::max<std::uint64_t>(2000, static_cast<std::uint64_t>(concurrency) * 4);
    if (run(warm) != warm) {
        std::fprintf(stderr, "warm-up requests failed: is %s answering 2xx?\n", url.c_str());
        return 1;
    }
    const auto before = allocations.load();
    const auto ok = run(n);
    const auto counted = allocations.load() - before;
    std::printf("{\"mode\":\"%s\",\"requests\":%llu,\"ok\":%llu,\"allocations\":%llu,\"allocations_per_request\":%.2f}\n",
                mode.c_str(), static_cast<unsigned long long>(n), static_cast<unsigned long long>(ok),
                static_cast<unsigned long long>(counted), n ? static_cast<double>(counted) / static_cast<double>(n) : 0.0);
    return ok == n ? 0 : 1;
}
