// A log-bucketed latency histogram for tokenflight-load: lock-free recording from any thread,
// at most 1% relative error on every reported percentile.
#ifndef TOKENFLIGHT_LOAD_HISTOGRAM_HPP
#define TOKENFLIGHT_LOAD_HISTOGRAM_HPP

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace tokenflight::load {

/// Counts durations in buckets whose width is 1/128 of their octave, so a bucket's midpoint is
/// within 1/256 (0.4%) of every value it holds. Values are recorded in nanoseconds, from 1 ns to
/// 2^40 ns (about 18 minutes); larger values land in the last bucket.
///
/// record() is wait-free (one relaxed atomic increment on one of a few shards chosen per thread);
/// readers may run concurrently and see a snapshot that is at most slightly behind.
///
/// A snapshot is the buckets' counts, so two snapshots subtract into the values recorded between
/// them (the per-second rows of the timeline) and snapshots of several runs add up bucket by
/// bucket (the distribution in --json).
class histogram {
public:
    static constexpr int sub_bits = 7; // 128 sub-buckets per octave
    static constexpr int sub_count = 1 << sub_bits;
    static constexpr int max_octave = 40;
    static constexpr std::size_t bucket_count = static_cast<std::size_t>(max_octave + 1) * sub_count;

    /// The buckets' counts, merged over the shards: index b holds the values in
    /// [bucket_low(b), bucket_high(b)).
    using counts = std::vector<std::uint64_t>;

    /// `shard_count` copies of the buckets (1 to 8): one per recording thread keeps them off each
    /// other's cache lines; one is enough for a histogram few values go to.
    explicit histogram(int shard_count = 8);

    void record(std::chrono::nanoseconds d) noexcept;
    /// Adds `n` values in bucket `b` (another run's distribution, merged bucket by bucket), and
    /// raises the maximum to `max`. Ignores a bucket out of range.
    void add(std::size_t b, std::uint64_t n, std::chrono::nanoseconds max) noexcept;

    /// Total number of recorded values.
    std::uint64_t count() const noexcept;
    /// The value at quantile q in [0, 1] (0.5 is the median), as a bucket midpoint.
    std::chrono::nanoseconds quantile(double q) const;
    /// The largest value recorded (exact).
    std::chrono::nanoseconds max() const noexcept;
    /// The largest value recorded since the last call (since construction for the first), and
    /// starts a new window. A value recorded during the call lands in one of the two windows.
    std::chrono::nanoseconds take_window_max() noexcept;

    /// The counts recorded so far.
    counts snapshot() const;
    /// The value at quantile q of `c` (as quantile(), clamped to `max`); 0 when `c` is empty.
    static std::chrono::nanoseconds quantile_of(const counts& c, double q, std::chrono::nanoseconds max);

    /// Bucket of a value, and the range a bucket covers (for tests).
    static std::size_t bucket_of(std::uint64_t ns) noexcept;
    static std::uint64_t bucket_low(std::size_t b) noexcept;
    static std::uint64_t bucket_high(std::size_t b) noexcept; // exclusive

private:
    static constexpr int max_shards = 8;
    struct alignas(64) shard {
        std::array<std::atomic<std::uint64_t>, bucket_count> buckets{};
    };
    int shard_count_;
    std::unique_ptr<shard[]> shards_;
    std::atomic<std::uint64_t> max_{0}, window_max_{0};
};

} // namespace tokenflight::load

#endif
