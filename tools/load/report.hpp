// tokenflight-load's report: the run's figures, as text for people or as one JSON line.
#ifndef TOKENFLIGHT_LOAD_REPORT_HPP
#define TOKENFLIGHT_LOAD_REPORT_HPP

#include "config.hpp"
#include "runner.hpp"
#include "senders.hpp"

#include <cstdint>

namespace tokenflight::load {

/// The run's counts; the status and error breakdowns and the latency stay in the tally.
struct summary {
    std::uint64_t requests = 0;
    std::uint64_t ok = 0; ///< requests answered 2xx
    std::uint64_t token_fetches = 0;
    std::uint64_t resends_after_401 = 0;
    double duration_s = 0;
};

/// The counts of a finished run that lasted `duration_s` seconds.
summary summarise(const tally& t, const senders& s, double duration_s);

/// Prints the report on stdout: one JSON object on one line with --json, text otherwise.
void print_report(const config& cfg, const summary& sum, tally& t);

} // namespace tokenflight::load

#endif
