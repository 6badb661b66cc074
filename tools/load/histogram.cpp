#include "histogram.hpp"

#include <algorithm>
#include <cmath>

namespace tokenflight::load {

histogram::histogram(int shard_count)
    : shard_count_(std::clamp(shard_count, 1, max_shards)), shards_(new shard[static_cast<std::size_t>(shard_count_)]) {}

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
    thread_local const std::size_t my_shard = next_shard.fetch_add(1, std::memory_order_relaxed) % max_shards;
    shards_[my_shard % static_cast<std::size_t>(shard_count_)].buckets[bucket_of(ns)].fetch_add(
        1, std::memory_order_relaxed);
    for (auto* top : {&max_, &window_max_})
        for (auto m = top->load(std::memory_order_relaxed); ns > m && !top->compare_exchange_weak(m, ns);) {
        }
}

void histogram::add(std::size_t b, std::uint64_t n, std::chrono::nanoseconds max) noexcept {
    if (b >= bucket_count) return;
    shards_[0].buckets[b].fetch_add(n, std::memory_order_relaxed);
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, max.count()));
    for (auto m = max_.load(std::memory_order_relaxed); ns > m && !max_.compare_exchange_weak(m, ns);) {
    }
}

std::uint64_t histogram::count() const noexcept {
    std::uint64_t n = 0;
    for (int s = 0; s < shard_count_; ++s)
        for (const auto& b : shards_[s].buckets) n += b.load(std::memory_order_relaxed);
    return n;
}

histogram::counts histogram::snapshot() const {
    counts merged(bucket_count);
    for (int s = 0; s < shard_count_; ++s)
        for (std::size_t i = 0; i < bucket_count; ++i) merged[i] += shards_[s].buckets[i].load(std::memory_order_relaxed);
    return merged;
}

std::chrono::nanoseconds histogram::quantile_of(const counts& c, double q, std::chrono::nanoseconds max) {
    std::uint64_t total = 0;
    for (auto n : c) total += n;
    if (total == 0) return std::chrono::nanoseconds(0);
    const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
        seen += c[i];
        if (seen >= std::max<std::uint64_t>(rank, 1)) {
            const auto mid = static_cast<std::int64_t>((bucket_low(i) + bucket_high(i) - 1) / 2);
            return std::chrono::nanoseconds(std::min<std::int64_t>(mid, max.count()));
        }
    }
    return max;
}

std::chrono::nanoseconds histogram::quantile(double q) const {
    return quantile_of(snapshot(), q, max());
}

std::chrono::nanoseconds histogram::max() const noexcept {
    return std::chrono::nanoseconds(max_.load(std::memory_order_relaxed));
}

std::chrono::nanoseconds histogram::take_window_max() noexcept {
    return std::chrono::nanoseconds(window_max_.exchange(0, std::memory_order_relaxed));
}

} // namespace tokenflight::load
