#include "schedule.hpp"

#include <charconv>
#include <cmath>

namespace tokenflight::load {

namespace {
clock::duration from_seconds(double s) {
    return std::chrono::round<clock::duration>(std::chrono::duration<double>(s));
}
} // namespace

rate_schedule rate_schedule::constant(double rate) {
    rate_schedule r;
    r.endless_ = true;
    r.segments_.push_back({0, 0, rate, rate, 0});
    return r;
}

rate_schedule rate_schedule::staged(std::vector<rate_stage> stages) {
    rate_schedule r;
    double begin = 0, rate = 0, first = 0;
    for (const auto& s : stages) {
        const double length = std::chrono::duration<double>(s.length).count();
        segment seg{begin, length, rate, s.target, first};
        first += seg.count();
        begin += length;
        rate = s.target;
        if (length > 0) r.segments_.push_back(seg);
    }
    return r;
}

std::optional<clock::duration> rate_schedule::due(std::uint64_t i) const {
    const double n = static_cast<double>(i);
    if (endless_) return from_seconds(n / segments_.front().from);
    for (const auto& s : segments_) {
        if (n >= s.first + s.count()) continue;
        // Within this segment: solve from·t + slope·t²/2 = n - first for t in [0, length], in
        // the form that stays exact when the slope is zero or negative.
        const double want = n - s.first;
        if (want <= 0) return from_seconds(s.begin_s);
        const double slope = (s.to - s.from) / s.length_s;
        const double disc = s.from * s.from + 2 * slope * want;
        const double root = std::sqrt(std::max(disc, 0.0));
        const double denom = s.from + root;
        if (!(denom > 0)) continue; // no rate here to reach it
        return from_seconds(s.begin_s + std::min(2 * want / denom, s.length_s));
    }
    return std::nullopt;
}

std::optional<clock::duration> rate_schedule::length() const {
    if (endless_) return std::nullopt;
    return segments_.empty() ? clock::duration{} : from_seconds(segments_.back().begin_s + segments_.back().length_s);
}

std::optional<std::uint64_t> rate_schedule::requests() const {
    if (endless_) return std::nullopt;
    if (segments_.empty()) return 0;
    const auto& last = segments_.back();
    // Requests 0 .. ceil(total) - 1 are due within the stages.
    return static_cast<std::uint64_t>(std::ceil(last.first + last.count() - 1e-9));
}

double rate_schedule::rate_at(clock::duration t) const {
    const double s = std::chrono::duration<double>(t).count();
    if (endless_) return segments_.front().from;
    for (const auto& seg : segments_)
        if (s >= seg.begin_s && s < seg.begin_s + seg.length_s)
            return seg.from + (seg.to - seg.from) * (s - seg.begin_s) / seg.length_s;
    return 0;
}

std::variant<rate_schedule, std::string> parse_rate(std::string_view text) {
    const auto number = [](std::string_view t) -> std::optional<double> {
        double v = 0;
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || p != t.data() + t.size() || !std::isfinite(v)) return std::nullopt;
        return v;
    };
    if (text.find(':') == std::string_view::npos) {
        auto r = number(text);
        if (!r || !(*r > 0)) return std::string("requests per second above 0, or stages RATE:LENGTH,...");
        return rate_schedule::constant(*r);
    }
    std::vector<rate_stage> stages;
    double total_s = 0;
    bool any_rate = false;
    const std::string stage_help = "stages RATE:LENGTH, e.g. 1000:30s,5000:60s,0:10s (LENGTH in ms, s, m or h)";
    for (bool last = false; !last;) {
        const auto comma = text.find(',');
        last = comma == std::string_view::npos;
        const auto item = text.substr(0, comma);
        text = last ? std::string_view() : text.substr(comma + 1);
        const auto colon = item.find(':');
        if (colon == std::string_view::npos) return stage_help;
        auto rate = number(item.substr(0, colon));
        auto length_text = item.substr(colon + 1);
        double scale = 1;
        if (length_text.ends_with("ms")) {
            scale = 0.001;
            length_text.remove_suffix(2);
        } else if (length_text.ends_with("s")) {
            length_text.remove_suffix(1);
        } else if (length_text.ends_with("m")) {
            scale = 60;
            length_text.remove_suffix(1);
        } else if (length_text.ends_with("h")) {
            scale = 3600;
            length_text.remove_suffix(1);
        } else {
            return stage_help;
        }
        auto length = number(length_text);
        if (!rate || *rate < 0 || !length || *length < 0) return stage_help;
        total_s += *length * scale;
        if (total_s > 7 * 24 * 3600.0) return std::string("stages longer than a week in all");
        any_rate = any_rate || *rate > 0;
        stages.push_back({*rate, from_seconds(*length * scale)});
    }
    if (stages.empty() || !(total_s > 0) || !any_rate)
        return std::string("stages that last and send: some LENGTH above 0 and some RATE above 0");
    return rate_schedule::staged(std::move(stages));
}

} // namespace tokenflight::load
