// tokenflight-load's time series: one row per second of the run (requests, status classes,
// errors, latency percentiles, tokens, 401s, connections), and the token story (every token
// fetch, every storm of 401s) marked on the same time axis.
#ifndef TOKENFLIGHT_LOAD_TIMELINE_HPP
#define TOKENFLIGHT_LOAD_TIMELINE_HPP

#include "histogram.hpp"

#include <tokenflight/token.hpp> // clock

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace tokenflight::load {

/// Counts by status class: [k] for kxx, k from 1 to 5; [0] for any other status (below 100 or
/// above 599: a server's, since HTTP defines none).
using status_classes = std::array<std::uint64_t, 6>;

/// The class index of a status code.
inline std::size_t status_class_of(unsigned status) noexcept { return status >= 100 && status < 600 ? status / 100 : 0; }

/// Responses of any status but 2xx. (Not requests - errors - 2xx: the counters are read one after
/// the other while requests complete, so such a difference could go below zero.)
inline std::uint64_t not_2xx(const status_classes& c) noexcept { return c[0] + c[1] + c[3] + c[4] + c[5]; }

/// The run's counters at one instant, cumulative from its start (but `connections`, which is
/// the number open at that instant): the timeline's rows are differences of two of these.
struct run_counters {
    clock::time_point at;
    std::uint64_t requests = 0;                  ///< requests done (answered or failed)
    std::uint64_t errors = 0;                    ///< requests failed without a response
    status_classes status_class{};               ///< responses by status class
    std::uint64_t unauthorized = 0;              ///< 401s the clients got, resent or returned
    std::uint64_t resends = 0;                   ///< requests sent again after a 401
    std::uint64_t token_fetches = 0;             ///< requests to the token endpoint
    std::size_t connections = 0;                 ///< connections open or opening
    histogram::counts latency;                   ///< latency of the requests done
};

/// One second of the run (the last row may be shorter): what happened between two samples.
struct timeline_row {
    double end_s = 0;    ///< the row's end, in seconds from the start
    double length_s = 0; ///< 1 but for the last row
    std::uint64_t requests = 0, errors = 0;
    status_classes status_class{};
    std::chrono::nanoseconds p50{}, p90{}, p99{}, max{}; ///< of the requests done in the row
    std::uint64_t token_fetches = 0, unauthorized = 0, resends = 0;
    std::size_t connections = 0; ///< open at the row's end
};

/// Builds the rows from samples taken at the end of each second.
class timeline {
public:
    /// A run that started at `start`. The first row counts from zero, so the token fetched before
    /// the load started (tokenflight-load waits for one) is in it: the rows add up to the run's
    /// totals.
    explicit timeline(clock::time_point start);

    /// Adds the row from the previous sample to `now`; `window_max` is the largest latency
    /// recorded since the previous sample (raised to what the buckets show, if a value landed
    /// in the snapshot but not yet in the max).
    void add(const run_counters& now, std::chrono::nanoseconds window_max);

    const std::vector<timeline_row>& rows() const noexcept { return rows_; }

private:
    clock::time_point start_;
    run_counters last_;
    std::vector<timeline_row> rows_;
};

/// One request to the token endpoint, in seconds from the run's start (negative: before it, the
/// first token tokenflight-load waits for).
struct token_fetch_mark {
    double start_s = 0;
    std::optional<double> end_s; ///< unset: no answer before the run ended
    bool ok = false;             ///< a token came of it
    bool background = false;     ///< a proactive refresh while a valid token was served
};

/// A storm of 401s: 401s no more than storm_gap apart, from the first to the last (how long the
/// requests sent with the rejected token took to drain).
struct unauthorized_storm {
    double start_s = 0, end_s = 0;
    std::uint64_t count = 0;
};

/// What the token layer did, recorded from the token source's and the clients' events (any
/// thread) with their times. Bounded: past max_marks fetches or storms, only counted.
class token_story {
public:
    static constexpr std::size_t max_marks = 10'000;
    static constexpr std::chrono::milliseconds storm_gap{250};

    void fetch_started(bool background);
    void fetch_ended(bool ok);
    void unauthorized();

    /// The marks, in seconds from `start`.
    std::vector<token_fetch_mark> fetches(clock::time_point start) const;
    std::vector<unauthorized_storm> storms(clock::time_point start) const;
    /// Marks left out past max_marks.
    std::uint64_t dropped() const;

private:
    struct fetch {
        clock::time_point start;
        std::optional<clock::time_point> end;
        bool ok = false, background = false;
    };
    struct storm {
        clock::time_point first, last;
        std::uint64_t count = 0;
    };
    mutable std::mutex mutex_;
    std::vector<fetch> fetches_;
    std::vector<storm> storms_;
    std::uint64_t dropped_ = 0;
};

} // namespace tokenflight::load

#endif
