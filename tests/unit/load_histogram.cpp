#include "histogram.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

using tokenflight::load::histogram;
using namespace std::chrono_literals;

TEST_CASE("buckets tile the value range without gaps, each within 1% of its values") {
    for (std::size_t b = 0; b + 1 < histogram::bucket_count; ++b) {
        REQUIRE(histogram::bucket_high(b) == histogram::bucket_low(b + 1));
        const auto lo = histogram::bucket_low(b), hi = histogram::bucket_high(b);
        REQUIRE(histogram::bucket_of(lo) == b);
        REQUIRE(histogram::bucket_of(hi - 1) == b);
        const double mid = static_cast<double>((lo + hi - 1) / 2);
        if (lo > 0) REQUIRE(std::abs(mid - static_cast<double>(lo)) / static_cast<double>(lo) <= 0.01);
        if (hi > 1) REQUIRE(std::abs(static_cast<double>(hi - 1) - mid) / static_cast<double>(hi - 1) <= 0.01);
    }
}

TEST_CASE("quantiles of a known distribution are within 1%") {
    histogram h;
    std::vector<std::int64_t> values;
    std::mt19937_64 rng(42);
    std::lognormal_distribution<double> dist(13.0, 1.5); // around half a millisecond, long tail
    for (int i = 0; i < 100'000; ++i) {
        const auto v = static_cast<std::int64_t>(dist(rng)) + 1;
        values.push_back(v);
        h.record(std::chrono::nanoseconds(v));
    }
    std::sort(values.begin(), values.end());
    CHECK(h.count() == values.size());
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        const auto exact = static_cast<double>(values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1]);
        const auto got = static_cast<double>(h.quantile(q).count());
        CAPTURE(q);
        CHECK(std::abs(got - exact) / exact <= 0.01);
    }
    CHECK(h.max().count() == values.back());
}

TEST_CASE("recording from many threads loses nothing") {
    histogram h;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50'000; ++i) h.record(std::chrono::microseconds(1 + (i + t) % 1000));
        });
    for (auto& t : threads) t.join();
    CHECK(h.count() == 200'000);
    CHECK(h.max() == 1000us);
}

TEST_CASE("an empty histogram reports zeros") {
    histogram h;
    CHECK(h.count() == 0);
    CHECK(h.quantile(0.99).count() == 0);
    CHECK(h.max().count() == 0);
}
