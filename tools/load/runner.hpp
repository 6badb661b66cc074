// tokenflight-load's engine: N workers in a closed loop, or an open-model arrival schedule.
#ifndef TOKENFLIGHT_LOAD_RUNNER_HPP
#define TOKENFLIGHT_LOAD_RUNNER_HPP

#include "histogram.hpp"

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
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

namespace tokenflight::load {

/// What to run (the request itself is in the send function, prepared once).
struct plan {
    int concurrency = 64;                           ///< requests in flight
    std::optional<std::uint64_t> requests;          ///< stop after this many, or
    std::optional<clock::duration> duration;        ///< stop sending after this long
    std::optional<double> rate;                     ///< open model: requests per second
};

/// Counters shared by the workers; readable while the run goes on.
struct tally {
    std::atomic<std::uint64_t> done{0}, ok{0}, failed{0};
    std::array<std::atomic<std::uint64_t>, 600> status{};
    histogram latency;
    std::mutex errors_mutex;
    std::map<std::string, std::uint64_t> errors;

    void count_error(const error_code& ec);
};

/// A short, stable name for an error, for reports: "request_timeout", "connection_refused", ...
std::string error_kind(const error_code& ec);

/// Sends the run's prepared request once, keeping the brief response:
/// tokenflight::client::async_send_brief, or the bare connection pool's when the token layer is
/// switched off (--no-token, to measure what the token layer costs).
using send_function = std::function<boost::asio::awaitable<std::tuple<error_code, http::brief_response>>()>;

/// Runs `p` through `send` on `ex`; `on_done` is called once, from one of the executor's threads,
/// when every worker finished. Latency is measured from each request's scheduled send time.
void start_load(const boost::asio::any_io_executor& ex, send_function send, const plan& p, tally& t,
                std::function<void()> on_done);

} // namespace tokenflight::load

#endif
