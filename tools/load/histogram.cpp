#include "histogram.hpp"

#include <algorithm>
#include <cmath>

namespace tokenflight::load {

histogram::histogram() : shards_(new shard[shards]) {}

std::size_t histogram::bucket_of(std::uint64_t ns) noexcept {
    if (ns < sub_count) return static_cast<std::size_t>(ns); // octave 0 is exact: 0..127 ns
    const int msb = 63 - std::countl_zero(ns);                // ns >= 128, so msb >= 7
    const int octave = msb - sub_bits + 1;
    if (octave > max_octave) return bucket_count - 1;
    const auto sub = static_cast<std::size_t>((ns >> (msb - sub_bits)) & (sub_count - 1));
    return static_cast<std::size_t>(octave) * sub_count + sub;
}

std::uint64_t histogram::bucket_low(std::size_t b) noexcept {
    const std::size_t octave = b / sub_count, sub = b % sub_count;
    if (octave == 0) return sub;
    const int shift = static_cast<int>(octave) - 1;
    return (static_cast<std::uint64_t>(sub_count + sub)) << shift;
}

std::uint64_t histogram::bucket_high(std::size_t b) noexcept {
    const std::size_t octave = b / sub_count;
    if (octave == 0) return bucket_low(b) + 1;
    return bucket_low(b) + (std::uint64_t{1} << (octave - 1));
}

void histogram::record(std::chrono::nanoseconds d) noexcept {
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count()));
    // Threads take shards in turn, so that up to `shards` concurrent recorders (the -t event
    // loops) never share a cache line; a hash of the thread id could put two on one shard.
    static std::atomic<std::size_t> next_shard{0};
    thread_local const std::size_t my_shard = next_shard.fetch_add(1, std::memory_order_relaxed) % shards;
    shards_[my_shard].buckets[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
    for (auto m = max_.load(std::memory_order_relaxed); ns > m && !max_.compare_exchange_weak(m, ns);) {
    }
}

std::uint64_t histogram::count() const noexcept {
    std::uint64_t n = 0;
    for (int s = 0; s < shards; ++s)
        for (const auto& b : shards_[s].buckets) n += b.load(std::memory_order_relaxed);
    return n;
}

std::chrono::nanoseconds histogram::quantile(double q) const {
    std::vector<std::uint64_t> merged(bucket_count);
    std::uint64_t total = 0;
    for (int s = 0; s < shards; ++s)
        for (std::size_t i = 0; i < bucket_count; ++i) {
            const auto v = shards_[s].buckets[i].load(std::memory_order_relaxed);
            merged[i] += v;
            total += v;
        }
    if (total == 0) return std::chrono::nanoseconds(0);
    const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += merged[i];
        if (seen >= std::max<std::uint64_t>(rank, 1)) {
            const auto mid = (bucket_low(i) + bucket_high(i) - 1) / 2;
            return std::chrono::nanoseconds(std::min<std::uint64_t>(mid, max_.load(std::memory_order_relaxed)));
        }
    }
    return max();
}

std::chrono::nanoseconds histogram::max() const noexcept {
    return std::chrono::nanoseconds(max_.load(std::memory_order_relaxed));
}

} // namespace tokenflight::load
