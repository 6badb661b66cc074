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
class histogram {
public:
    static constexpr int sub_bits = 7; // 128 sub-buckets per octave
    static constexpr int sub_count = 1 << sub_bits;
    static constexpr int max_octave = 40;
    static constexpr std::size_t bucket_count = static_cast<std::size_t>(max_octave + 1) * sub_count;

    histogram();

    void record(std::chrono::nanoseconds d) noexcept;

    /// Total number of recorded values.
    std::uint64_t count() const noexcept;
    /// The value at quantile q in [0, 1] (0.5 is the median), as a bucket midpoint.
    std::chrono::nanoseconds quantile(double q) const;
    /// The largest value recorded (exact).
    std::chrono::nanoseconds max() const noexcept;

    /// Bucket of a value, and the range a bucket covers (for tests).
    static std::size_t bucket_of(std::uint64_t ns) noexcept;
    static std::uint64_t bucket_low(std::size_t b) noexcept;
    static std::uint64_t bucket_high(std::size_t b) noexcept; // exclusive

private:
    static constexpr int shards = 8;
    struct alignas(64) shard {
        std::array<std::atomic<std::uint64_t>, bucket_count> buckets{};
    };
    std::unique_ptr<shard[]> shards_;
    std::atomic<std::uint64_t> max_{0};
};

} // namespace tokenflight::load

#endif
