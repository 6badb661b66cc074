#include "run_load.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

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
    if (cfg.targets.size() > 1) {
        std::vector<unsigned> weights;
        for (const auto& t : cfg.targets) weights.push_back(t.weight);
        p.order = std::make_shared<const std::vector<std::uint32_t>>(weighted_order(weights));
    }
    return p;
}

// The live panel on a terminal: three lines redrawn in place, from the last whole second. Each
// line is cut to the terminal's width: a line that wrapped would take two rows, and the redraw,
// which goes back three rows, would leave pieces behind.
class live_panel {
public:
    static constexpr int lines = 3;

    void draw(const timeline& tl, const run_counters& now, const config& cfg) {
        if (drawn_) std::fprintf(stderr, "\x1b[%dF\x1b[J", lines); // back to the panel's top, erase
        drawn_ = true;
        const auto& row = tl.rows().back();
        std::string of;
        if (cfg.duration) of = " of " + seconds(std::chrono::duration<double>(*cfg.duration).count());
        else if (cfg.requests) of = " of " + std::to_string(*cfg.requests) + " requests";
        const std::size_t width = terminal_width();
        char line[256];
        std::snprintf(line, sizeof line, " elapsed   %s%s   requests %llu   errors %llu   non-2xx %llu",
                      seconds(row.end_s).c_str(), of.c_str(), ull(now.requests), ull(now.errors),
                      ull(not_2xx(now.status_class)));
        put(line, width);
        std::snprintf(line, sizeof line, " last 1s   %.0f req/s   p99 %.3fms   errors %llu   401s %llu",
                      static_cast<double>(row.requests) / std::max(row.length_s, 1e-9),
                      static_cast<double>(row.p99.count()) / 1e6, ull(row.errors), ull(row.unauthorized));
        put(line, width);
        std::snprintf(line, sizeof line, " tokens    %llu fetched   connections %zu", ull(now.token_fetches),
                      now.connections);
        put(line, width);
        std::fflush(stderr);
    }

    void erase() {
        if (drawn_) std::fprintf(stderr, "\x1b[%dF\x1b[J", lines);
        std::fflush(stderr);
    }

private:
    static unsigned long long ull(std::uint64_t n) { return static_cast<unsigned long long>(n); }
    static std::string seconds(double s) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1fs", s);
        return buf;
    }
    static std::size_t terminal_width() {
        winsize ws{};
        if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return ws.ws_col;
        return 80;
    }
    // One line, cut to leave the last column free (a full line may wrap the cursor).
    static void put(std::string_view line, std::size_t width) {
        line = line.substr(0, std::min(line.size(), width - 1));
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
    bool drawn_ = false;
};

} // namespace

run_outcome run_load(const config& cfg, event_loops& loops, const senders& s, tally& t, demo_servers* demo) {
    const plan whole = whole_run(cfg);
    std::mutex m;
    std::condition_variable cv;
    bool finished = false;
    std::atomic<int> loops_running{loops.size()};
    const auto start = clock::now();
    run_outcome out{start, 0, timeline(start)};
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
    std::optional<live_panel> panel;
    if (!cfg.json && ::isatty(STDERR_FILENO))
        panel.emplace();
    auto next_row = start + 1s;
    {
        std::unique_lock l(m);
        while (!finished) {
            // A demo's revocations are due at a finer grain than the rows.
            cv.wait_until(l, demo ? std::min(next_row, clock::now() + 50ms) : next_row);
            if (revocations)
                revocations->tick(t.done.load(), clock::now());
            if (finished || clock::now() < next_row)
                continue;
            next_row += 1s;
            const auto now = s.sample(t);
            out.rows.add(now, t.latency.take_window_max());
            if (panel)
                panel->draw(out.rows, now, cfg);
        }
    }
    // The last, shorter row: whatever was done since the last whole second.
    const auto last = s.sample(t);
    out.rows.add(last, t.latency.take_window_max());
    out.duration_s = std::chrono::duration<double>(last.at - start).count();
    // The summary takes the panel's place when it goes to the same terminal; printed elsewhere (a
    // file, a pipe), it leaves the last panel on the screen.
    if (panel && ::isatty(STDOUT_FILENO))
        panel->erase();
    return out;
}

} // namespace tokenflight::load
