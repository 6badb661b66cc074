#include <tokenflight/token_source.hpp>

#include "support.hpp"

#include <tokenflight/testing/fake_auth_server.hpp>

#include <atomic>
#include <mutex>
#include <set>

using namespace tokenflight;
using namespace std::chrono_literals;

namespace {

struct tally {
    std::atomic<int> done{0}, errors{0};
    std::mutex m;
    std::set<std::string> values;
    std::set<std::uint64_t> generations;
    auto handler() {
        return [this](error_code ec, access_token t) {
            if (ec) {
                ++errors;
            } else {
                std::lock_guard l(m);
                values.emplace(t.value());
                generations.insert(t.generation());
            }
            ++done;
        };
    }
};

void cold_cache_storm(int threads) {
    testing::fake_auth_server server;
    server.set_latency(50ms); // everyone arrives while the one request is in flight
    test::io_threads io(threads);
    token_source src(io.executor(), server.client_credentials());
    tally t;
    const int n = 10'000;
    // Issued from the io threads as well as this one, as a server would.
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; ++c)
        callers.emplace_back([&] {
            for (int i = 0; i < n / 4; ++i) src.async_get_token(t.handler());
        });
    for (auto& c : callers) c.join();
    REQUIRE(test::eventually([&] { return t.done == n; }, 60s));
    CHECK(t.errors == 0);
    CHECK(t.values.size() == 1);
    CHECK(server.token_requests() == 1);
}

} // namespace

TEST_CASE("10,000 concurrent async_get_token on a cold cache: exactly one token request (1 thread)") {
    cold_cache_storm(1);
}

TEST_CASE("10,000 concurrent async_get_token on a cold cache: exactly one token request (4 threads)") {
    cold_cache_storm(4);
}

TEST_CASE("10,000 concurrent get-newer-than(g): one request; an older g gets the current token for free") {
    testing::fake_auth_server server;
    test::io_threads io(4);
    token_source src(io.executor(), server.client_credentials());
    auto first = src.async_get_token(boost::asio::use_future);
    REQUIRE(first.wait_for(10s) == std::future_status::ready);
    const auto g = first.get().generation();
    REQUIRE(g == 1);
    server.set_latency(50ms);

    tally t;
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; ++c)
        callers.emplace_back([&] {
            for (int i = 0; i < 2500; ++i) src.async_get_token_after(g, t.handler());
        });
    for (auto& c : callers) c.join();
    REQUIRE(test::eventually([&] { return t.done == 10'000; }, 60s));
    CHECK(t.errors == 0);
    CHECK(t.generations == std::set<std::uint64_t>{2});
    CHECK(server.token_requests() == 2);
    CHECK(src.stats().reactive_refreshes == 1);

    tally old;
    for (int i = 0; i < 1000; ++i) src.async_get_token_after(g - 1, old.handler());
    for (int i = 0; i < 1000; ++i) src.async_get_token_after(g, old.handler());
    REQUIRE(test::eventually([&] { return old.done == 2000; }, 60s));
    CHECK(old.generations == std::set<std::uint64_t>{2});
    CHECK(server.token_requests() == 2);
}

TEST_CASE("the hot path from many threads while refreshes come and go") {
    testing::fake_auth_server::options so;
    so.lifetime = 1s;
    testing::fake_auth_server server(so);
    test::io_threads io(2);
    token_source src(io.executor(), server.client_credentials());
    const auto start = clock::now();
    auto first = src.async_get_token(boost::asio::use_future);
    REQUIRE(first.wait_for(10s) == std::future_status::ready);
    const auto first_token = first.get();
    std::atomic<std::uint64_t> served{0};
    std::atomic<std::uint64_t> unusable{0};
    std::atomic<bool> newer_served{false};
    std::vector<std::thread> readers;
    const auto until = clock::now() + 2500ms;
    for (int r = 0; r < 4; ++r)
        readers.emplace_back([&] {
            for (auto before = clock::now(); before < until; before = clock::now()) {
                if (auto t = src.try_get_token(); t && !t.value().empty()) {
                    ++served;
                    if (t.generation() > first_token.generation()) newer_served = true;
                    if (before >= t.usable_until()) ++unusable; // served after it stopped being usable
                }
            }
        });
    for (auto& r : readers) r.join();
    const auto elapsed = clock::now() - start;
    CHECK(served > 0);
    CHECK(unusable == 0);
    // Refreshes happened in the background (the readers saw a newer token) and never two at a
    // time; each started once its predecessor was stale, 0.8 s after that one was sent, so at
    // most 1 + elapsed / 0.8 s of them fit, however slow the machine.
    CHECK(newer_served);
    CHECK(server.max_concurrent_requests() == 1);
    const auto bound = 1 + static_cast<std::uint64_t>(elapsed / 800ms);
    CAPTURE(bound);
    CHECK(server.token_requests() >= 2);
    CHECK(server.token_requests() <= bound);
}
