// The pool's latency histogram: bucket bounds and percentiles, no sockets.
#include <tokenflight/http/connection_pool.hpp>

#include <doctest/doctest.h>

#include <chrono>

using namespace std::chrono_literals;
using duration = tokenflight::clock::duration;
using tokenflight::http::latency_histogram;

TEST_CASE("latency_histogram: every bucket holds the values below its upper bound and at or above the last one") {
    CHECK(latency_histogram::bucket_of(duration::zero()) == 0);
    CHECK(latency_histogram::bucket_of(-5ms) == 0);
    CHECK(latency_histogram::upper_bound(0) == 1us);
    for (std::size_t i = 0; i + 1 < latency_histogram::bucket_count; ++i) {
        CAPTURE(i);
        const auto high = latency_histogram::upper_bound(i);
        CHECK(high > (i == 0 ? duration::zero() : latency_histogram::upper_bound(i - 1)));
        CHECK(latency_histogram::bucket_of(high - 1ns) == i);
        CHECK(latency_histogram::bucket_of(high) == i + 1);
        if (i >= latency_histogram::sub_buckets) { // log-linear: at most 1/8 of the lower bound wide
            const auto low = latency_histogram::upper_bound(i - 1);
            CHECK((high - low) * 8 <= low);
        }
    }
    // The last regular bucket ends past a minute; beyond it, one bucket for everything.
    const auto last = latency_histogram::bucket_count - 1;
    CHECK(latency_histogram::upper_bound(last - 1) >= 60s);
    CHECK(latency_histogram::upper_bound(last) == duration::max());
    CHECK(latency_histogram::bucket_of(1h) == last);
    CHECK(latency_histogram::bucket_of(duration::max()) == last);
}

TEST_CASE("latency_histogram: percentiles are the upper bounds of the buckets holding them") {
    latency_histogram h;
    CHECK(h.total() == 0);
    CHECK(h.percentile(0.5) == duration::zero());
    // 90 values of 100 us, 9 of 10 ms, 1 of 2 s
    h.counts[latency_histogram::bucket_of(100us)] += 90;
    h.counts[latency_histogram::bucket_of(10ms)] += 9;
    h.counts[latency_histogram::bucket_of(2s)] += 1;
    CHECK(h.total() == 100);
    const auto at = [](duration d) { return latency_histogram::upper_bound(latency_histogram::bucket_of(d)); };
    CHECK(h.percentile(0) == at(100us));
    CHECK(h.percentile(0.5) == at(100us));
    CHECK(h.percentile(0.9) == at(100us));
    CHECK(h.percentile(0.91) == at(10ms));
    CHECK(h.percentile(0.99) == at(10ms));
    CHECK(h.percentile(0.999) == at(2s));
    CHECK(h.percentile(1) == at(2s));
    CHECK(h.percentile(7) == at(2s)); // clamped
    CHECK(at(100us) > 100us);
    CHECK(at(100us) <= 100us + 100us / 8);
    h.counts[latency_histogram::bucket_count - 1] += 1000;
    CHECK(h.percentile(0.99) == duration::max());
    latency_histogram sum;
    sum += h;
    sum += h;
    CHECK(sum.total() == 2 * h.total());
}
