#include "timeline.hpp"

namespace tokenflight::load {

namespace {

double seconds_between(clock::time_point from, clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

} // namespace

timeline::timeline(clock::time_point start) : start_(start) {
    last_.at = start;
    last_.latency.assign(histogram::bucket_count, 0);
}

void timeline::add(const run_counters& now, std::chrono::nanoseconds window_max) {
    timeline_row r;
    r.end_s = seconds_between(start_, now.at);
    r.length_s = seconds_between(last_.at, now.at);
    r.requests = now.requests - last_.requests;
    r.errors = now.errors - last_.errors;
    for (std::size_t k = 0; k < r.status_class.size(); ++k)
        r.status_class[k] = now.status_class[k] - last_.status_class[k];
    r.token_fetches = now.token_fetches - last_.token_fetches;
    r.unauthorized = now.unauthorized - last_.unauthorized;
    r.resends = now.resends - last_.resends;
    r.connections = now.connections;
    histogram::counts window(now.latency.size());
    std::uint64_t highest_low = 0; // the lowest value the window's highest bucket can hold
    for (std::size_t b = 0; b < window.size(); ++b) {
        window[b] = now.latency[b] - last_.latency[b];
        if (window[b]) highest_low = histogram::bucket_low(b);
    }
    // The snapshot and the window's max are read one after the other while requests complete:
    // a value may be in one and not the other. The max is at least what the buckets show.
    r.max = std::max(window_max, std::chrono::nanoseconds(static_cast<std::int64_t>(highest_low)));
    r.p50 = histogram::quantile_of(window, 0.50, r.max);
    r.p90 = histogram::quantile_of(window, 0.90, r.max);
    r.p99 = histogram::quantile_of(window, 0.99, r.max);
    rows_.push_back(r);
    last_ = now;
}

void token_story::fetch_started(bool background) {
    std::lock_guard l(mutex_);
    if (fetches_.size() == max_marks) {
        ++dropped_;
        return;
    }
    fetches_.push_back(fetch{clock::now(), std::nullopt, false, background});
}

void token_story::fetch_ended(bool ok) {
    std::lock_guard l(mutex_);
    // A source has one token request in flight at most: the last one started is the one ending.
    if (!fetches_.empty() && !fetches_.back().end) {
        fetches_.back().end = clock::now();
        fetches_.back().ok = ok;
    }
}

void token_story::unauthorized() {
    const auto now = clock::now();
    std::lock_guard l(mutex_);
    if (!storms_.empty() && now - storms_.back().last <= storm_gap) {
        storms_.back().last = std::max(storms_.back().last, now);
        ++storms_.back().count;
    } else if (storms_.size() == max_marks) {
        ++dropped_;
    } else {
        storms_.push_back(storm{now, now, 1});
    }
}

std::vector<token_fetch_mark> token_story::fetches(clock::time_point start) const {
    std::lock_guard l(mutex_);
    std::vector<token_fetch_mark> out;
    out.reserve(fetches_.size());
    for (const auto& f : fetches_) {
        token_fetch_mark m{seconds_between(start, f.start), std::nullopt, f.ok, f.background};
        if (f.end) m.end_s = seconds_between(start, *f.end);
        out.push_back(m);
    }
    return out;
}

std::vector<unauthorized_storm> token_story::storms(clock::time_point start) const {
    std::lock_guard l(mutex_);
    std::vector<unauthorized_storm> out;
    out.reserve(storms_.size());
    for (const auto& s : storms_)
        out.push_back({seconds_between(start, s.first), seconds_between(start, s.last), s.count});
    return out;
}

std::uint64_t token_story::dropped() const {
    std::lock_guard l(mutex_);
    return dropped_;
}

} // namespace tokenflight::load
