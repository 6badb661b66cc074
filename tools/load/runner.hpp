// tokenflight-load's engine: N workers in a closed loop, or an open-model arrival schedule, on
// one event loop; a run over several event loops (-t) starts one slice of it on each.
#ifndef TOKENFLIGHT_LOAD_RUNNER_HPP
#define TOKENFLIGHT_LOAD_RUNNER_HPP

#include "histogram.hpp"
#include "schedule.hpp"
#include "timeline.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/http/prepared_request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace tokenflight::load {

/// What to run (the request itself is in the send function, prepared once).
struct plan {
    int concurrency = 64;                           ///< requests in flight
    std::optional<std::uint64_t> requests;          ///< stop after this many, or
    std::optional<clock::duration> duration;        ///< stop sending after this long
    std::optional<rate_schedule> rate;              ///< open model: when each request is due
    /// This event loop's slice of the run: it sends requests loop, loop + loops, loop + 2 loops,
    /// ... of the run's global sequence, each at its slot of the global schedule under `rate`,
    /// until `requests` or `duration` ends the whole run.
    int loop = 0, loops = 1;
    /// The run's start, shared by all its loops (unset: when start_load is called).
    std::optional<clock::time_point> start;
    /// Several targets (--targets): request i goes to target order[i % order.size()]. Empty:
    /// every request to target 0.
    std::shared_ptr<const std::vector<std::uint32_t>> order;
};

/// The order in which weighted targets take turns, one cycle long (the weights' sum divided by
/// their greatest common divisor): smooth weighted round-robin, so weights 5,1,1 give
/// a a b a c a a rather than five a in a row.
std::vector<std::uint32_t> weighted_order(const std::vector<unsigned>& weights);

/// Loop `loop`'s share of `total` split over `loops`: total / loops each, the remainder one more
/// each to the first loops (10 over 4: 3 3 2 2).
int share(int total, int loop, int loops);

/// The plan of loop `loop` of `loops` for the run `whole`: its share of the concurrency, its
/// slice of the request sequence, the run's common start.
plan plan_for_loop(const plan& whole, int loop, int loops, clock::time_point start);

/// One target's share of a run with several (--targets).
struct target_tally {
    std::atomic<std::uint64_t> done{0}, ok{0}, failed{0};
    histogram latency{1};
};

/// Counters shared by the workers of every loop (atomics, and a histogram recorded without
/// locks from any thread); readable while the run goes on.
struct tally {
    /// `target_count` targets get counters of their own when there are two or more.
    explicit tally(std::size_t target_count = 1);

    std::atomic<std::uint64_t> done{0}, ok{0}, failed{0};
    std::array<std::atomic<std::uint64_t>, 1000> status{}; ///< by code: Beast reads 0 to 999
    histogram latency;
    mutable std::mutex errors_mutex;
    std::map<std::string, std::uint64_t> errors;
    std::vector<std::unique_ptr<target_tally>> targets; ///< empty with a single target
    token_story* story = nullptr; ///< if set, told of every 401 returned (with its time)

    void count_error(const error_code& ec);
};

/// A short, stable name for an error, for reports: "request_timeout", "connection_refused", ...
std::string error_kind(const error_code& ec);

/// Sends the run's prepared request for target `k` once, keeping the brief response:
/// tokenflight::client::async_send_brief, or the bare connection pool's when the token layer is
/// switched off (--no-token, to measure what the token layer costs).
using send_function =
    std::function<boost::asio::awaitable<std::tuple<error_code, http::brief_response>>(std::size_t k)>;

/// Runs `p` through `send` on `ex`; `on_done` is called once, from one of the executor's threads,
/// when every worker finished (at once, posted, if `p.concurrency` is below 1). Latency is
/// measured from each request's scheduled send time.
void start_load(const boost::asio::any_io_executor& ex, send_function send, const plan& p, tally& t,
                std::function<void()> on_done);

} // namespace tokenflight::load

#endif
