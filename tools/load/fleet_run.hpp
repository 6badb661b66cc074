// Distributed runs (issue 16): N tokenflight-load workers, on any machines that reach one Redis,
// start together and hand their results to the run; `--collect` merges them into one report.
//
// In Redis, under tokenflight:run:ID: `ready` (a counter the workers increment once they have
// their first token), `workers` (N), `results` (a list of the workers' --json objects). They
// expire a day after the run's last write. Polled, not subscribed: a worker looks every 10 ms
// while it waits for the others, the collector every 100 ms.
#ifndef TOKENFLIGHT_LOAD_FLEET_RUN_HPP
#define TOKENFLIGHT_LOAD_FLEET_RUN_HPP

#include "config.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace tokenflight::load {

/// --run ID --workers N: counts this worker in, then waits until the N are (cfg.run_wait at
/// most). Why not, when it cannot: Redis unreachable, more than N workers for the ID, the wait
/// over.
std::optional<std::string> join_run(const config& cfg);

/// Hands this worker's result (json_report's object) to its run.
std::optional<std::string> push_result(const config& cfg, const std::string& result_json);

/// --collect ID: waits (cfg.run_wait at most) for the run's results, merges them, prints and
/// writes the report as a single run's. The exit status: as a run's (0: every request of every
/// worker a 2xx), 2 when the results cannot be had or read.
int collect_run(const config& cfg);

/// The TLS context for a rediss:// --redis URL (the system's trust, and --cacert's CA when
/// given); null for redis://.
std::shared_ptr<boost::asio::ssl::context> redis_tls(const config& cfg);

} // namespace tokenflight::load

#endif
