// The HTML report: one file with the run's parameters, its summary and inline SVG charts drawn
// here, with no script and nothing fetched (docs/load-report.md says why).
#include "report.hpp"

#include <tokenflight/http/url.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokenflight::load {

namespace {

std::string escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
        }
    }
    return out;
}

std::string num(double v, int decimals = 1) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string count(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

// A value range mapped onto pixels, linear or logarithmic, with round tick values.
struct scale {
    double lo = 0, hi = 1;
    double from = 0, to = 1; // pixels
    bool log = false;

    double operator()(double v) const {
        if (log) {
            const double l = std::log10(std::max(v, lo));
            return from + (l - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) * (to - from);
        }
        return from + (v - lo) / (hi - lo) * (to - from);
    }

    std::vector<double> ticks() const {
        std::vector<double> out;
        if (log) {
            for (double d = std::pow(10, std::floor(std::log10(lo))); d <= hi * 1.0001; d *= 10)
                for (double m : {1.0, 2.0, 5.0})
                    if (d * m >= lo * 0.9999 && d * m <= hi * 1.0001) out.push_back(d * m);
            return out;
        }
        const double raw = (hi - lo) / 5;
        const double mag = std::pow(10, std::floor(std::log10(raw)));
        double step = mag;
        for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
            if (mag * m >= raw) {
                step = mag * m;
                break;
            }
        for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push_back(v);
        return out;
    }
};

// A linear range from 0 with a little head room (1 when there is nothing to show).
scale linear_to(double max_value, double from, double to) {
    return scale{0, max_value > 0 ? max_value * 1.08 : 1, from, to, false};
}

// A log range covering [min_value, max_value], widened to whole 1-2-5 steps.
scale log_between(double min_value, double max_value, double from, double to) {
    double lo = min_value > 0 ? min_value : 0.001, hi = std::max(max_value, lo * 10);
    lo = std::pow(10, std::floor(std::log10(lo)));
    hi = std::pow(10, std::ceil(std::log10(hi)));
    return scale{lo, hi, from, to, true};
}

std::string tick_label(double v) {
    if (v >= 1000) return count(static_cast<std::uint64_t>(std::llround(v)));
    if (v >= 10 || v == std::floor(v)) return num(v, 0);
    if (v >= 0.1) return num(v, 1);
    if (v >= 0.01) return num(v, 2);
    return num(v, 3);
}

struct series {
    std::string label;
    std::string css; // the stroke's class: s1 to s4, err
    std::vector<std::pair<double, double>> points;
};

// One chart: axes, grid and labels around marks (class "mark") drawn in between.
class chart {
public:
    static constexpr double width = 960, height = 280, left = 64, right = 36, top = 28, bottom = 40;

    chart(std::string name, std::string title, scale x, scale y, std::string x_title, std::string y_title)
        : name_(std::move(name)), title_(std::move(title)), x_(x), y_(y), x_title_(std::move(x_title)),
          y_title_(std::move(y_title)) {
        x_.from = left;
        x_.to = width - right;
        y_.from = height - bottom;
        y_.to = top;
    }

    const scale& x() const { return x_; }
    const scale& y() const { return y_; }

    void line(const series& s) {
        if (s.points.empty()) return;
        legend_.emplace_back(s.label, s.css);
        if (s.points.size() == 1) { // a run shorter than a second: a dot, not a line of no length
            const auto [px, py] = s.points.front();
            body_ += "<circle class=\"mark " + s.css + "\" cx=\"" + num(x_(px)) + "\" cy=\"" + num(y_(py)) +
                     "\" r=\"3.5\"><title>" + escape(s.label) + "</title></circle>";
            return;
        }
        std::string pts;
        for (const auto& [px, py] : s.points) pts += num(x_(px)) + ',' + num(y_(py)) + ' ';
        body_ += "<polyline class=\"mark " + s.css + "\" points=\"" + pts + "\"><title>" + escape(s.label) +
                 "</title></polyline>";
    }

    // A shaded span of the x axis (a storm of 401s), behind the lines.
    void band(double x0, double x1, const std::string& css, const std::string& title) {
        const double a = x_(x0), b = std::max(x_(x1), a + 4);
        under_ += "<rect class=\"" + css + "\" x=\"" + num(a) + "\" y=\"" + num(top) + "\" width=\"" + num(b - a) +
                  "\" height=\"" + num(height - top - bottom) + "\"><title>" + escape(title) + "</title></rect>";
    }

    // A vertical marker at x (a token fetch).
    void marker(double at, const std::string& css, const std::string& title) {
        const double px = x_(std::clamp(at, x_.lo, x_.hi));
        under_ += "<line class=\"" + css + "\" x1=\"" + num(px) + "\" x2=\"" + num(px) + "\" y1=\"" + num(top) +
                  "\" y2=\"" + num(height - bottom) + "\"><title>" + escape(title) + "</title></line>";
    }

    void raw(std::string svg) { body_ += svg; }
    void legend(std::string label, std::string css) { legend_.emplace_back(std::move(label), std::move(css)); }

    void x_ticks(std::vector<std::pair<double, std::string>> ticks) { x_ticks_ = std::move(ticks); }
    /// No y grid or tick labels (a bar chart labels its bars).
    void hide_y_ticks() { y_ticks_shown_ = false; }

    std::string str() const {
        std::string out = "<figure><figcaption>" + escape(title_) + "</figcaption><svg class=\"chart\" data-chart=\"" +
                          name_ + "\" viewBox=\"0 0 " + num(width, 0) + ' ' + num(height, 0) +
                          "\" role=\"img\" aria-label=\"" + escape(title_) + "\">";
        for (double v : y_ticks_shown_ ? y_.ticks() : std::vector<double>{}) {
            const double py = y_(v);
            out += "<line class=\"grid\" x1=\"" + num(left) + "\" x2=\"" + num(width - right) + "\" y1=\"" + num(py) +
                   "\" y2=\"" + num(py) + "\"/><text class=\"tick\" x=\"" + num(left - 6) + "\" y=\"" + num(py + 4) +
                   "\" text-anchor=\"end\">" + tick_label(v) + "</text>";
        }
        auto xt = x_ticks_;
        if (xt.empty())
            for (double v : x_.ticks()) xt.emplace_back(v, tick_label(v));
        for (const auto& [v, label] : xt) {
            const double px = x_(v);
            out += "<line class=\"grid\" x1=\"" + num(px) + "\" x2=\"" + num(px) + "\" y1=\"" + num(top) + "\" y2=\"" +
                   num(height - bottom) + "\"/><text class=\"tick\" x=\"" + num(px) + "\" y=\"" +
                   num(height - bottom + 16) + "\" text-anchor=\"middle\">" + escape(label) + "</text>";
        }
        out += under_ + body_;
        out += "<line class=\"axis\" x1=\"" + num(left) + "\" x2=\"" + num(width - right) + "\" y1=\"" +
               num(height - bottom) + "\" y2=\"" + num(height - bottom) + "\"/>";
        out += "<line class=\"axis\" x1=\"" + num(left) + "\" x2=\"" + num(left) + "\" y1=\"" + num(top) + "\" y2=\"" +
               num(height - bottom) + "\"/>";
        out += "<text class=\"axis-title\" x=\"" + num((left + width - right) / 2) + "\" y=\"" + num(height - 6) +
               "\" text-anchor=\"middle\">" + escape(x_title_) + "</text>";
        out += "<text class=\"axis-title\" x=\"14\" y=\"" + num((top + height - bottom) / 2) +
               "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " + num((top + height - bottom) / 2) + ")\">" +
               escape(y_title_) + "</text>";
        double lx = left + 8;
        for (const auto& [label, css] : legend_) {
            out += "<rect class=\"key " + css + "\" x=\"" + num(lx) + "\" y=\"8\" width=\"14\" height=\"4\"/>";
            out += "<text class=\"legend\" x=\"" + num(lx + 18) + "\" y=\"14\">" + escape(label) + "</text>";
            lx += 30 + 7.2 * static_cast<double>(label.size());
        }
        return out + "</svg></figure>\n";
    }

private:
    std::string name_, title_;
    scale x_, y_;
    std::string x_title_, y_title_;
    std::string under_, body_;
    std::vector<std::pair<std::string, std::string>> legend_;
    std::vector<std::pair<double, std::string>> x_ticks_;
    bool y_ticks_shown_ = true;
};

// The token story on a time chart: a band per storm of 401s, a line per token fetch.
void mark_token_story(chart& c, const run_report& r) {
    for (const auto& s : r.storms)
        c.band(s.start_s, s.end_s, "storm",
               count(s.count) + " 401s from " + num(s.start_s, 2) + " s, drained in " +
                   num((s.end_s - s.start_s) * 1000, 0) + " ms");
    for (const auto& f : r.fetches)
        c.marker(std::max(f.start_s, 0.0), f.ok ? "fetch" : "fetch failed",
                 std::string(f.background ? "background " : "") + "token fetch at " + num(f.start_s, 2) + " s" +
                     (f.end_s ? ", took " + num((*f.end_s - f.start_s) * 1000, 1) + " ms" : ", unanswered") +
                     (f.ok ? "" : ", failed"));
    if (!r.storms.empty()) c.legend("401 storm", "storm");
    if (!r.fetches.empty()) c.legend("token fetch", "fetch");
}

// The rows the per-second charts plot: all but a last one shorter than a quarter of a second,
// whose rate would be a few requests over a sliver of time (it is in the CSV and the JSON).
std::span<const timeline_row> plotted_rows(const run_report& r) {
    std::span<const timeline_row> rows(r.rows);
    if (rows.size() > 1 && rows.back().length_s < 0.25) rows = rows.first(rows.size() - 1);
    return rows;
}

// Each row plotted at its middle.
double mid(const timeline_row& row) { return row.end_s - row.length_s / 2; }

std::string throughput_chart(const run_report& r) {
    series total{"requests/s", "s1", {}}, non2xx{"non-2xx/s", "s3", {}}, errors{"errors/s", "err", {}};
    double top = 0;
    for (const auto& row : plotted_rows(r)) {
        const double len = std::max(row.length_s, 1e-3);
        const auto non_ok = not_2xx(row.status_class);
        total.points.emplace_back(mid(row), static_cast<double>(row.requests) / len);
        non2xx.points.emplace_back(mid(row), static_cast<double>(non_ok) / len);
        errors.points.emplace_back(mid(row), static_cast<double>(row.errors) / len);
        top = std::max(top, static_cast<double>(row.requests) / len);
    }
    chart c("throughput", "Requests and errors per second", linear_to(r.sum.duration_s, 0, 1), linear_to(top, 0, 1),
            "seconds from the start", "per second");
    mark_token_story(c, r);
    c.line(total);
    c.line(non2xx);
    c.line(errors);
    return c.str();
}

std::string latency_chart(const run_report& r) {
    series p50{"p50", "s1", {}}, p90{"p90", "s2", {}}, p99{"p99", "s3", {}}, max{"max", "s4", {}};
    double lo = 0, hi = 0;
    for (const auto& row : plotted_rows(r)) {
        if (!row.requests) continue;
        p50.points.emplace_back(mid(row), ms(row.p50));
        p90.points.emplace_back(mid(row), ms(row.p90));
        p99.points.emplace_back(mid(row), ms(row.p99));
        max.points.emplace_back(mid(row), ms(row.max));
        if (const double p = ms(row.p50); p > 0) lo = lo == 0 ? p : std::min(lo, p);
        hi = std::max(hi, ms(row.max));
    }
    chart c("latency", "Latency percentiles per second (log scale)", linear_to(r.sum.duration_s, 0, 1),
            log_between(lo, hi, 0, 1), "seconds from the start", "milliseconds");
    mark_token_story(c, r);
    for (const auto* s : {&p50, &p90, &p99, &max}) c.line(*s);
    return c.str();
}

// Latency by percentile, the percentile axis stretched as -log10(1 - q): 90%, 99%, 99.9%, ...
// equally spaced, as HdrHistogram plots it.
std::string distribution_chart(const run_report& r) {
    std::uint64_t total = 0;
    for (auto n : r.latency) total += n;
    const double nines = total > 1 ? std::min(6.0, std::ceil(std::log10(static_cast<double>(total)))) : 1;
    series s{"latency", "s1", {}};
    std::uint64_t seen = 0;
    double hi = 0;
    const double max_ms = ms(r.t.latency.max());
    for (std::size_t b = 0; b < r.latency.size(); ++b) {
        if (!r.latency[b]) continue;
        const double v = std::min(static_cast<double>(histogram::bucket_high(b)) / 1e6, max_ms);
        const auto stretch = [&](std::uint64_t n) {
            const double q = static_cast<double>(n) / static_cast<double>(total);
            return std::min(nines, -std::log10(std::max(1 - q, 1e-12)));
        };
        s.points.emplace_back(stretch(seen), v);
        seen += r.latency[b];
        s.points.emplace_back(stretch(seen), v);
        hi = std::max(hi, v);
    }
    chart c("distribution", "Latency by percentile", scale{0, nines, 0, 1, false}, linear_to(hi, 0, 1),
            "percentile", "milliseconds");
    std::vector<std::pair<double, std::string>> ticks;
    const char* names[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"};
    for (int k = 0; k <= static_cast<int>(nines); ++k) ticks.emplace_back(k, names[k]);
    c.x_ticks(std::move(ticks));
    c.line(s);
    return c.str();
}

// Horizontal bars: every status code, then every error kind.
std::string status_chart(const run_report& r) {
    std::vector<std::pair<std::string, std::uint64_t>> bars;
    for (std::size_t s = 0; s < r.t.status.size(); ++s)
        if (auto n = r.t.status[s].load()) bars.emplace_back(std::to_string(s), n);
    {
        std::lock_guard l(r.t.errors_mutex);
        for (const auto& [kind, n] : r.t.errors) bars.emplace_back(kind, n);
    }
    std::uint64_t top = 0;
    for (const auto& b : bars) top = std::max(top, b.second);
    chart c("status", "Responses by status, and errors", linear_to(static_cast<double>(top), 0, 1),
            scale{0, static_cast<double>(std::max<std::size_t>(bars.size(), 1)), 0, 1, false}, "requests", "");
    c.hide_y_ticks();
    const double step = (chart::height - chart::top - chart::bottom) / static_cast<double>(std::max<std::size_t>(bars.size(), 1));
    for (std::size_t i = 0; i < bars.size(); ++i) {
        const auto& [label, n] = bars[i];
        const bool is_error = !label.empty() && !std::isdigit(static_cast<unsigned char>(label[0]));
        const bool ok = !is_error && label[0] == '2';
        const double y0 = chart::top + step * static_cast<double>(i) + step * 0.15;
        const double w = std::max(c.x()(static_cast<double>(n)) - chart::left, 1.0);
        c.raw("<rect class=\"mark bar " + std::string(ok ? "ok" : is_error ? "err" : "s3") + "\" x=\"" +
              num(chart::left) + "\" y=\"" + num(y0) + "\" width=\"" + num(w) + "\" height=\"" + num(step * 0.7) +
              "\"><title>" + escape(label) + ": " + count(n) + "</title></rect>");
        c.raw("<text class=\"bar-label\" x=\"" + num(chart::left + w + 6) + "\" y=\"" + num(y0 + step * 0.35 + 4) +
              "\">" + escape(label) + ": " + count(n) + "</text>");
    }
    return c.str();
}

std::string tokens_chart(const run_report& r) {
    series unauthorized{"401s/s", "err", {}}, resends{"resent/s", "s2", {}}, fetches{"token fetches/s", "s1", {}};
    double top = 0;
    for (const auto& row : plotted_rows(r)) {
        const double len = std::max(row.length_s, 1e-3);
        unauthorized.points.emplace_back(mid(row), static_cast<double>(row.unauthorized) / len);
        resends.points.emplace_back(mid(row), static_cast<double>(row.resends) / len);
        fetches.points.emplace_back(mid(row), static_cast<double>(row.token_fetches) / len);
        top = std::max({top, static_cast<double>(row.unauthorized) / len, static_cast<double>(row.token_fetches) / len});
    }
    chart c("tokens", "The token layer: fetches, 401s and resends per second", linear_to(r.sum.duration_s, 0, 1),
            linear_to(top, 0, 1), "seconds from the start", "per second");
    mark_token_story(c, r);
    c.line(unauthorized);
    c.line(resends);
    c.line(fetches);
    return c.str();
}

std::string connections_chart(const run_report& r) {
    series open{"connections open", "s2", {}};
    double top = 0;
    for (const auto& row : plotted_rows(r)) {
        open.points.emplace_back(row.end_s, static_cast<double>(row.connections));
        top = std::max(top, static_cast<double>(row.connections));
    }
    chart c("connections", "Connections open", linear_to(r.sum.duration_s, 0, 1), linear_to(top, 0, 1),
            "seconds from the start", "connections");
    c.line(open);
    return c.str();
}

std::string row(std::string_view name, const std::string& value) {
    return "<tr><th>" + escape(name) + "</th><td>" + escape(value) + "</td></tr>";
}

std::string parameters_table(const run_report& r) {
    const auto& cfg = r.cfg;
    std::string out = "<table class=\"params\">";
    if (r.targets.size() == 1) {
        out += row("request", r.targets.front().name());
    } else {
        out += row("targets", std::to_string(r.targets.size()) + ", in turn by weight");
    }
    if (!cfg.headers.empty()) {
        std::string names; // the values may be API keys: names only
        for (const auto& [n, v] : cfg.headers) names += (names.empty() ? "" : ", ") + n;
        out += row("headers (-H, values not shown)", names);
    }
    out += row("in flight (-c)", std::to_string(cfg.concurrency));
    out += row("event loops (-t)", std::to_string(cfg.threads));
    if (cfg.rate) {
        const auto length = cfg.rate->length();
        out += row("arrival rate (-R)", length ? "stages over " + num(std::chrono::duration<double>(*length).count(), 1) + " s"
                                               : num(cfg.rate->rate_at(clock::duration::zero()), 0) + " requests/s");
    } else {
        out += row("arrival rate", "closed loop: each request sent when one finishes");
    }
    if (cfg.requests) out += row("requests (-n)", count(*cfg.requests));
    if (cfg.duration) out += row("duration (-d)", num(std::chrono::duration<double>(*cfg.duration).count(), 1) + " s");
    out += row("timeout", num(std::chrono::duration<double>(cfg.timeout).count(), 1) + " s");
    if (cfg.no_token) {
        out += row("token layer", "off (--no-token)");
    } else if (cfg.demo) {
        out += row("servers", "--demo: in-process authorization server and API on 127.0.0.1");
    } else {
        const auto& c = cfg.creds;
        out += row("token endpoint", http::redact_url(c.token_url.empty() ? c.issuer : c.token_url));
        out += row("client authentication", std::string(to_string(c.auth)));
    }
    if (cfg.dpop) out += row("DPoP", "on");
    return out + "</table>";
}

std::string summary_table(const run_report& r) {
    const auto& lat = r.t.latency;
    std::uint64_t unauthorized = 0;
    for (const auto& s : r.storms) unauthorized += s.count;
    std::string out = "<table class=\"summary\">";
    out += row("requests", count(r.sum.requests) + " in " + num(r.sum.duration_s, 2) + " s");
    out += row("requests/s", num(static_cast<double>(r.sum.requests) / std::max(r.sum.duration_s, 1e-9), 1));
    out += row("answered 2xx", count(r.sum.ok));
    out += row("latency p50 / p90 / p99 / max",
               num(ms(lat.quantile(0.5)), 3) + " / " + num(ms(lat.quantile(0.9)), 3) + " / " +
                   num(ms(lat.quantile(0.99)), 3) + " / " + num(ms(lat.max()), 3) + " ms");
    out += row("token fetches", count(r.sum.token_fetches));
    out += row("resent after a 401", count(r.sum.resends_after_401));
    out += row("401 storms", std::to_string(r.storms.size()) + " (" + count(unauthorized) + " 401s)");
    return out + "</table>";
}

std::string story_table(const run_report& r) {
    std::string out = "<table class=\"story\"><tr><th>at (s)</th><th>what</th><th>took (ms)</th></tr>";
    struct entry {
        double at;
        std::string what, took;
    };
    std::vector<entry> entries;
    for (const auto& f : r.fetches)
        entries.push_back({f.start_s,
                           std::string(f.start_s < 0 ? "first token, before the load" : f.background ? "background token fetch" : "token fetch") +
                               (f.ok ? "" : " (failed)"),
                           f.end_s ? num((*f.end_s - f.start_s) * 1000, 1) : "no answer"});
    for (const auto& s : r.storms)
        entries.push_back({s.start_s, count(s.count) + " 401s: drained", num((s.end_s - s.start_s) * 1000, 1)});
    std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) { return a.at < b.at; });
    for (const auto& e : entries)
        out += "<tr><td>" + num(e.at, 3) + "</td><td>" + escape(e.what) + "</td><td>" + escape(e.took) + "</td></tr>";
    if (r.marks_dropped) out += "<tr><td></td><td>" + count(r.marks_dropped) + " more not recorded</td><td></td></tr>";
    return out + "</table>";
}

std::string targets_table(const run_report& r) {
    if (r.t.targets.empty()) return "";
    std::string out = "<h2>Targets</h2><table class=\"targets\"><tr><th>#</th><th>target</th><th>weight</th><th>requests</th>"
                      "<th>scope</th><th>2xx</th><th>errors</th><th>p50 (ms)</th><th>p99 (ms)</th><th>max (ms)</th></tr>";
    for (std::size_t k = 0; k < r.t.targets.size(); ++k) {
        const auto& tt = *r.t.targets[k];
        out += "<tr><td>" + std::to_string(k + 1) + "</td><td>" + escape(r.targets[k].name()) + "</td><td>" + std::to_string(r.targets[k].weight) + "</td><td>" +
               count(tt.done.load()) + "</td><td>" + escape(r.targets[k].scope.value_or("--scope")) + "</td><td>" +
               count(tt.ok.load()) + "</td><td>" + count(tt.failed.load()) +
               "</td><td>" + num(ms(tt.latency.quantile(0.5)), 3) + "</td><td>" + num(ms(tt.latency.quantile(0.99)), 3) +
               "</td><td>" + num(ms(tt.latency.max()), 3) + "</td></tr>";
    }
    return out + "</table>";
}

constexpr std::string_view style = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#5b6475;margin:0 0 16px}
.tables{display:flex;gap:24px;flex-wrap:wrap}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;text-align:left;border-bottom:1px solid #e3e6ec}
th{color:#5b6475;font-weight:500}
figure{margin:18px 0}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block;background:#fbfcfe;border:1px solid #e3e6ec;border-radius:4px}
.grid{stroke:#e6e9ef;stroke-width:1}.axis{stroke:#8a93a5;stroke-width:1}
.tick,.legend,.bar-label{font-size:11px;fill:#4a5263}.axis-title{font-size:11px;fill:#6b7385}
polyline.mark{fill:none;stroke-width:1.8;stroke-linejoin:round}
.s1{stroke:#2f6fde;fill:#2f6fde}.s2{stroke:#1a9e77;fill:#1a9e77}.s3{stroke:#e08a00;fill:#e08a00}.s4{stroke:#8e44ad;fill:#8e44ad}
.err{stroke:#d7263d;fill:#d7263d}.ok{fill:#1a9e77;stroke:none}rect.bar{stroke:none}
rect.storm,rect.key.storm{fill:#d7263d;fill-opacity:.25;stroke:none}
line.fetch{stroke:#7b5cd6;stroke-width:1.4;stroke-dasharray:4 3}rect.key.fetch{fill:#7b5cd6}
line.failed{stroke:#d7263d}
details{margin-top:16px}pre{font-size:12px;overflow:auto}
)";

} // namespace

std::string html_report(const run_report& r) {
    std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
                      "<title>tokenflight-load report</title><style>";
    out += style;
    out += "</style></head><body>\n<h1>tokenflight-load report</h1><p class=\"sub\">" +
           escape(r.targets.size() == 1 ? r.targets.front().name() : std::to_string(r.targets.size()) + " targets") +
           " &middot; " + count(r.sum.requests) + " requests in " + num(r.sum.duration_s, 2) + " s</p>\n";
    out += "<div class=\"tables\"><div><h2>Run</h2>" + parameters_table(r) + "</div><div><h2>Summary</h2>" +
           summary_table(r) + "</div></div>\n";
    out += throughput_chart(r);
    out += latency_chart(r);
    out += distribution_chart(r);
    out += status_chart(r);
    out += tokens_chart(r);
    out += connections_chart(r);
    out += targets_table(r);
    out += "<h2>Token story</h2>" + story_table(r);
    out += "<details><summary>Per-second timeline (CSV)</summary><pre>" + escape(timeline_csv(r)) + "</pre></details>";
    out += "\n</body></html>\n";
    return out;
}

} // namespace tokenflight::load
