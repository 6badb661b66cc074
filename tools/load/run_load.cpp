#include "run_load.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>

namespace tokenflight::load {

using namespace std::chrono_literals;

namespace {

plan whole_run(const config& cfg) {
    plan p;
    p.concurrency = cfg.concurrency;
    p.requests = cfg.requests;
    if (cfg.duration)
        p.duration = *cfg.duration;
    p.rate = cfg.rate;
    return p;
}

void show_progress(const tally& t, clock::time_point start) {
    const double secs = std::chrono::duration<double>(clock::now() - start).count();
    std::fprintf(stderr, "\r%llu done, %.0f req/s, %llu errors   ",
                 static_cast<unsigned long long>(t.done.load()),
                 t.done.load() / std::max(secs, 1e-9),
                 static_cast<unsigned long long>(t.failed.load()));
}

} // namespace

double run_load(const config& cfg, event_loops& loops, const senders& s, tally& t,
                demo_servers* demo) {
    const plan whole = whole_run(cfg);
    std::mutex m;
    std::condition_variable cv;
    bool finished = false;
    std::atomic<int> loops_running{loops.size()};
    const auto start = clock::now();
    for (int k = 0; k < loops.size(); ++k)
        start_load(loops.executor(k), s.loops[static_cast<std::size_t>(k)].send,
                   plan_for_loop(whole, k, loops.size(), start), t, [&] {
                       if (loops_running.fetch_sub(1) != 1)
                           return;
                       std::lock_guard l(m);
                       finished = true;
                       cv.notify_all();
                   });

    std::optional<demo_revocations> revocations;
    if (demo)
        revocations.emplace(*demo, cfg, start);
    const bool progress = !cfg.json && ::isatty(STDERR_FILENO);
    {
        std::unique_lock l(m);
        while (!finished) {
            // A demo's revocations are due at a finer grain than the progress line.
            cv.wait_for(l, demo ? 50ms : 1s);
            if (revocations)
                revocations->tick(t.done.load(), clock::now());
            if (progress)
                show_progress(t, start);
        }
    }
    const double duration_s = std::chrono::duration<double>(clock::now() - start).count();
    if (progress)
        std::fprintf(stderr, "\r%60s\r", "");
    return duration_s;
}

} // namespace tokenflight::load
