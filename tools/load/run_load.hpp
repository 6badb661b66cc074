// tokenflight-load's run: every event loop's slice of the load, the wait for its end, and what
// is sampled on the way (the timeline, the live panel).
#ifndef TOKENFLIGHT_LOAD_RUN_LOAD_HPP
#define TOKENFLIGHT_LOAD_RUN_LOAD_HPP

#include "config.hpp"
#include "demo.hpp"
#include "event_loops.hpp"
#include "runner.hpp"
#include "senders.hpp"
#include "timeline.hpp"

namespace tokenflight::load {

/// A finished run: when it started, how long it took, and its second-by-second rows.
struct run_outcome {
    clock::time_point start;
    double duration_s = 0;
    timeline rows;
};

/// Runs `cfg`'s load through `s` on every loop of `loops` into `t`, and returns when the last
/// loop's workers are done. Each loop runs its slice of the run: its share of -c, requests k,
/// k + N, ... of the global sequence and schedule.
///
/// While it waits: samples the counters at every whole second from the start (and once more at
/// the end) into the timeline; with `demo` (nullable), revokes every token when due (see
/// demo_revocations); when stderr is a terminal and the output is not --json, keeps a live panel
/// there, redrawn in place every second and erased at the end when stdout is that terminal too
/// (the summary takes its place).
run_outcome run_load(const config& cfg, event_loops& loops, const senders& s, tally& t, demo_servers* demo);

} // namespace tokenflight::load

#endif
