// tokenflight-load's run: every event loop's slice of the load, and the wait for its end.
#ifndef TOKENFLIGHT_LOAD_RUN_LOAD_HPP
#define TOKENFLIGHT_LOAD_RUN_LOAD_HPP

#include "config.hpp"
#include "demo.hpp"
#include "event_loops.hpp"
#include "runner.hpp"
#include "senders.hpp"

namespace tokenflight::load {

/// Runs `cfg`'s load through `s` on every loop of `loops` into `t`, and returns when the last
/// loop's workers are done, after how many seconds. Each loop runs its slice of the run: its share
/// of -c, requests k, k + N, ... of the global sequence and schedule.
///
/// While it waits: with `demo` (nullable), revokes every token when due (see demo_revocations);
/// when stderr is a terminal and the output is not --json, keeps a progress line there (erased
/// at the end).
double run_load(const config& cfg, event_loops& loops, const senders& s, tally& t,
                demo_servers* demo);

} // namespace tokenflight::load

#endif
