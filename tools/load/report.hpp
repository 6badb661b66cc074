// tokenflight-load's report: the run's figures as text for people, as one JSON object, as the
// timeline's CSV, and as a self-contained HTML page with charts. All four are written from one
// run_report, so they cannot disagree.
#ifndef TOKENFLIGHT_LOAD_REPORT_HPP
#define TOKENFLIGHT_LOAD_REPORT_HPP

#include "config.hpp"
#include "run_load.hpp"
#include "runner.hpp"
#include "senders.hpp"
#include "timeline.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tokenflight::load {

/// The run's counts; the status and error breakdowns and the latency stay in the tally.
struct summary {
    std::uint64_t requests = 0;
    std::uint64_t ok = 0; ///< requests answered 2xx
    std::uint64_t token_fetches = 0;
    std::uint64_t tokens_adopted = 0;      ///< --redis: tokens another worker fetched
    std::uint64_t shared_store_errors = 0; ///< --redis: the store could not help (fetched alone)
    std::uint64_t resends_after_401 = 0;
    double duration_s = 0;
    /// --http2 / --h2c: the pools' requests (resends included), how many went as HTTP/2
    /// streams, and over how many HTTP/2 connections.
    std::uint64_t wire_requests = 0;
    std::uint64_t http2_requests = 0;
    std::uint64_t http2_connections = 0;
};

/// Which protocol carried the run's requests: "HTTP/2", "HTTP/1.1", or "mixed".
std::string protocol_of(const summary& s);

/// The counts of a finished run that lasted `duration_s` seconds.
summary summarise(const tally& t, const senders& s, double duration_s);

/// Everything a finished run reports, gathered once.
struct run_report {
    run_report(const config& cfg, const tally& t, const senders& s, const run_outcome& run);
    /// A report from parts gathered elsewhere (--collect: the workers' results merged).
    run_report(const config& cfg, const tally& t, summary sum, std::vector<timeline_row> rows,
               std::vector<token_fetch_mark> fetches, std::vector<unauthorized_storm> storms, std::uint64_t dropped);

    const config& cfg;
    const tally& t;
    summary sum;
    std::vector<timeline_row> rows;
    std::vector<token_fetch_mark> fetches;   ///< every token request, from the run's start
    std::vector<unauthorized_storm> storms;  ///< every storm of 401s
    std::uint64_t marks_dropped = 0;         ///< past token_story::max_marks
    histogram::counts latency;               ///< the whole run's distribution
    const std::vector<target>& targets;      ///< what was sent (names and weights)
};

/// Prints the report on stdout: one JSON object on one line with --json, text otherwise.
void print_report(const run_report& r);

/// The JSON object --json prints: the summary, `timeline` (one object per row),
/// `latency_distribution` (every non-empty bucket's bounds and count, in nanoseconds, so runs
/// can be merged bucket by bucket), `token_story`, and `targets` when there are several.
std::string json_report(const run_report& r);

/// The timeline as CSV, one header line and one line per row, with the same names as the JSON's
/// timeline members.
std::string timeline_csv(const run_report& r);

/// The HTML report (report_html.cpp): one file, no script, nothing fetched.
std::string html_report(const run_report& r);

/// Whether `path` can be written (so that a bad path fails before the run, leaving no file), or
/// why not.
std::optional<std::string> check_writable(const std::string& path);
/// Writes `text` to `path`, or says why it could not.
std::optional<std::string> write_file(const std::string& path, const std::string& text);

} // namespace tokenflight::load

#endif
