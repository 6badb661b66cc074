// tokenflight-load's per-second rows, token story and weighted turns, from counters set by hand.
#include "runner.hpp"
#include "timeline.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace tokenflight;
using namespace std::chrono_literals;
using load::histogram;
using load::run_counters;

namespace {

run_counters at(clock::time_point t, std::uint64_t requests, std::vector<std::chrono::nanoseconds> latencies = {}) {
    run_counters c;
    c.at = t;
    c.requests = requests;
    c.latency.assign(histogram::bucket_count, 0);
    for (auto d : latencies) ++c.latency[histogram::bucket_of(static_cast<std::uint64_t>(d.count()))];
    return c;
}

} // namespace

TEST_CASE("rows are the differences of cumulative samples, their percentiles those of the window") {
    const auto start = clock::now();
    load::timeline tl(start);
    auto first = at(start + 1s, 100, std::vector<std::chrono::nanoseconds>(100, 1ms));
    first.status_class[2] = 98;
    first.status_class[4] = 2;
    first.token_fetches = 1;
    first.connections = 8;
    tl.add(first, 1ms);
    // The second window holds 100 more values, all 10 ms: its percentiles ignore the first's.
    auto latencies = std::vector<std::chrono::nanoseconds>(100, 1ms);
    latencies.insert(latencies.end(), 100, 10ms);
    auto second = at(start + 2s, 200, latencies);
    second.status_class[2] = 190;
    second.status_class[4] = 2;
    second.errors = 8;
    second.unauthorized = 5;
    second.resends = 5;
    second.token_fetches = 2;
    second.connections = 6;
    tl.add(second, 10ms);
    auto last = second;
    last.at = start + 2250ms;
    tl.add(last, 0ms);

    const auto& rows = tl.rows();
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].requests == 100);
    CHECK(rows[0].status_class[2] == 98);
    CHECK(rows[0].token_fetches == 1);
    CHECK(std::abs(rows[0].p99.count() - 1'000'000) < 10'000); // within a bucket of 1 ms
    CHECK(rows[1].requests == 100);
    CHECK(rows[1].status_class[2] == 92);
    CHECK(rows[1].status_class[4] == 0);
    CHECK(rows[1].errors == 8);
    CHECK(rows[1].unauthorized == 5);
    CHECK(rows[1].token_fetches == 1);
    CHECK(rows[1].connections == 6);
    CHECK(std::abs(rows[1].p50.count() - 10'000'000) < 100'000); // within a bucket of 10 ms
    CHECK(rows[1].max == 10ms);
    CHECK(rows[1].end_s == doctest::Approx(2.0));
    CHECK(rows[2].requests == 0);
    CHECK(rows[2].length_s == doctest::Approx(0.25));
    CHECK(rows[2].p99 == 0ns);
}

TEST_CASE("a histogram's window max restarts at every take, its overall max does not") {
    histogram h(1);
    h.record(5ms);
    h.record(2ms);
    CHECK(h.take_window_max() == 5ms);
    CHECK(h.take_window_max() == 0ns);
    h.record(1ms);
    CHECK(h.take_window_max() == 1ms);
    CHECK(h.max() == 5ms);
    const auto snap = h.snapshot();
    std::uint64_t n = 0;
    for (auto c : snap) n += c;
    CHECK(n == 3);
    CHECK(histogram::quantile_of(snap, 1.0, h.max()) <= 5ms);
    CHECK(histogram::quantile_of(snap, 0.0, h.max()) >= 1ms * 0.99);
}

TEST_CASE("the token story: fetches with their ends, 401s grouped into storms by their gaps") {
    load::token_story story;
    const auto start = clock::now();
    story.fetch_started(false);
    story.fetch_ended(true);
    story.fetch_started(true);
    story.fetch_ended(false);
    story.fetch_ended(true); // no fetch open: ignored
    for (int i = 0; i < 5; ++i) story.unauthorized();
    std::this_thread::sleep_for(load::token_story::storm_gap + 50ms);
    story.unauthorized();

    const auto fetches = story.fetches(start);
    REQUIRE(fetches.size() == 2);
    CHECK(fetches[0].ok);
    CHECK_FALSE(fetches[0].background);
    REQUIRE(fetches[0].end_s.has_value());
    CHECK(*fetches[0].end_s >= fetches[0].start_s);
    CHECK_FALSE(fetches[1].ok);
    CHECK(fetches[1].background);
    const auto storms = story.storms(start);
    REQUIRE(storms.size() == 2);
    CHECK(storms[0].count == 5);
    CHECK(storms[1].count == 1);
    CHECK(storms[1].start_s - storms[0].end_s >= 0.25);
    CHECK(story.dropped() == 0);
}

TEST_CASE("weighted turns interleave and give each target its weight per cycle") {
    CHECK(load::weighted_order({1}) == std::vector<std::uint32_t>{0});
    CHECK(load::weighted_order({1, 1, 1}) == std::vector<std::uint32_t>{0, 1, 2});
    CHECK(load::weighted_order({3, 1, 1}) == std::vector<std::uint32_t>{0, 1, 0, 2, 0});
    const auto order = load::weighted_order({5, 2, 1000, 1});
    REQUIRE(order.size() == 1008);
    std::vector<std::uint64_t> turns(4);
    for (auto k : order) ++turns[k];
    CHECK(turns == std::vector<std::uint64_t>{5, 2, 1000, 1});
    // A light target's turns are spread over the cycle, not bunched: weight 5 of 1008 comes
    // about every 200 turns.
    std::size_t last = 0, widest = 0;
    bool any = false;
    for (std::size_t i = 0; i < order.size(); ++i)
        if (order[i] == 0) {
            if (any) widest = std::max(widest, i - last);
            last = i;
            any = true;
        }
    CHECK(widest <= 2 * 1008 / 5);
    CHECK(widest >= 1008 / 5 / 2);
}
