#include "report.hpp"

#include <tokenflight/http/url.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>

namespace tokenflight::load {

namespace {

double to_ms(std::chrono::nanoseconds d) {
    return static_cast<double>(d.count()) / 1e6;
}

std::string fixed(double v, int decimals = 3) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string format_ms(std::chrono::nanoseconds d) {
    return fixed(to_ms(d)) + "ms";
}

double requests_per_second(const summary& sum) {
    return static_cast<double>(sum.requests) / std::max(sum.duration_s, 1e-9);
}

// The timeline's columns, in order: the CSV's header and the JSON's member names.
struct column {
    const char* name;
    std::string (*value)(const timeline_row&);
};

const column columns[] = {
    {"end_s", [](const timeline_row& r) { return fixed(r.end_s); }},
    {"length_s", [](const timeline_row& r) { return fixed(r.length_s); }},
    {"requests", [](const timeline_row& r) { return std::to_string(r.requests); }},
    {"status_2xx", [](const timeline_row& r) { return std::to_string(r.status_class[2]); }},
    {"status_3xx", [](const timeline_row& r) { return std::to_string(r.status_class[3]); }},
    {"status_4xx", [](const timeline_row& r) { return std::to_string(r.status_class[4]); }},
    {"status_5xx", [](const timeline_row& r) { return std::to_string(r.status_class[5]); }},
    {"status_other", [](const timeline_row& r) { return std::to_string(r.status_class[0] + r.status_class[1]); }},
    {"errors", [](const timeline_row& r) { return std::to_string(r.errors); }},
    {"p50_ms", [](const timeline_row& r) { return fixed(to_ms(r.p50)); }},
    {"p90_ms", [](const timeline_row& r) { return fixed(to_ms(r.p90)); }},
    {"p99_ms", [](const timeline_row& r) { return fixed(to_ms(r.p99)); }},
    {"max_ms", [](const timeline_row& r) { return fixed(to_ms(r.max)); }},
    {"token_fetches", [](const timeline_row& r) { return std::to_string(r.token_fetches); }},
    {"unauthorized", [](const timeline_row& r) { return std::to_string(r.unauthorized); }},
    {"resends", [](const timeline_row& r) { return std::to_string(r.resends); }},
    {"connections", [](const timeline_row& r) { return std::to_string(r.connections); }},
};

// Appends `"key":value` (value already JSON), after a comma unless it is the first member.
void member(std::string& out, bool& first, const std::string& key, const std::string& value) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += key;
    out += "\":";
    out += value;
}

// A JSON string: tokenflight-load's names are printable ASCII but for what a URL may hold.
std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += buf;
        } else {
            out += c;
        }
    }
    return out + '"';
}

// The run's target, or how many targets it had.
std::string to_of(const run_report& r) {
    return r.targets.size() == 1 ? http::redact_url(r.targets.front().url) : std::to_string(r.targets.size()) + " targets";
}

std::string timeline_json(const std::vector<timeline_row>& rows) {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (i) out += ',';
        bool first = true;
        out += '{';
        for (const auto& c : columns) member(out, first, c.name, c.value(rows[i]));
        out += '}';
    }
    return out + ']';
}

std::string distribution_json(const histogram::counts& c) {
    std::string out = "{\"unit\":\"ns\",\"buckets\":[";
    bool first = true;
    for (std::size_t b = 0; b < c.size(); ++b) {
        if (!c[b]) continue;
        if (!first) out += ',';
        first = false;
        out += '[' + std::to_string(histogram::bucket_low(b)) + ',' + std::to_string(histogram::bucket_high(b)) + ',' +
               std::to_string(c[b]) + ']';
    }
    return out + "]}";
}

std::string token_story_json(const run_report& r) {
    std::string out = "{\"fetches\":[";
    for (std::size_t i = 0; i < r.fetches.size(); ++i) {
        const auto& f = r.fetches[i];
        if (i) out += ',';
        bool first = true;
        out += '{';
        member(out, first, "start_s", fixed(f.start_s));
        member(out, first, "end_s", f.end_s ? fixed(*f.end_s) : "null");
        member(out, first, "ok", f.ok ? "true" : "false");
        member(out, first, "background", f.background ? "true" : "false");
        out += '}';
    }
    out += "],\"storms_401\":[";
    for (std::size_t i = 0; i < r.storms.size(); ++i) {
        const auto& s = r.storms[i];
        if (i) out += ',';
        bool first = true;
        out += '{';
        member(out, first, "start_s", fixed(s.start_s));
        member(out, first, "end_s", fixed(s.end_s));
        member(out, first, "count", std::to_string(s.count));
        out += '}';
    }
    return out + "],\"dropped\":" + std::to_string(r.marks_dropped) + '}';
}

std::string targets_json(const run_report& r) {
    std::string out = "[";
    for (std::size_t k = 0; k < r.t.targets.size(); ++k) {
        const auto& tt = *r.t.targets[k];
        if (k) out += ',';
        bool first = true;
        out += '{';
        member(out, first, "name", json_string(r.targets[k].name()));
        member(out, first, "weight", std::to_string(r.targets[k].weight));
        if (r.targets[k].scope) member(out, first, "scope", json_string(*r.targets[k].scope));
        member(out, first, "requests", std::to_string(tt.done.load()));
        member(out, first, "ok", std::to_string(tt.ok.load()));
        member(out, first, "errors", std::to_string(tt.failed.load()));
        member(out, first, "p50_ms", fixed(to_ms(tt.latency.quantile(0.5))));
        member(out, first, "p99_ms", fixed(to_ms(tt.latency.quantile(0.99))));
        member(out, first, "max_ms", fixed(to_ms(tt.latency.max())));
        member(out, first, "latency_distribution", distribution_json(tt.latency.snapshot()));
        out += '}';
    }
    return out + ']';
}

void print_text(const run_report& r) {
    const auto& cfg = r.cfg;
    const auto& sum = r.sum;
    const auto& t = r.t;
    const std::string to = to_of(r);
    std::printf("%llu requests in %.2fs to %s, %d in flight, %d thread%s", static_cast<unsigned long long>(sum.requests),
                sum.duration_s, to.c_str(), cfg.concurrency, cfg.threads, cfg.threads == 1 ? "" : "s");
    if (!cfg.collect_id.empty()) std::printf(", %d workers", cfg.workers); // a merged run
    std::printf("\n");
    const auto& latency = t.latency;
    std::printf("  latency     p50 %s   p90 %s   p99 %s   max %s\n",
                format_ms(latency.quantile(0.5)).c_str(), format_ms(latency.quantile(0.9)).c_str(),
                format_ms(latency.quantile(0.99)).c_str(), format_ms(latency.max()).c_str());
    std::printf("  requests/s  %.1f\n", requests_per_second(sum));
    std::printf("  status     ");
    for (std::size_t s = 0; s < t.status.size(); ++s)
        if (auto n = t.status[s].load())
            std::printf(" %zu: %llu", s, static_cast<unsigned long long>(n));
    std::printf("\n");
    {
        std::lock_guard l(t.errors_mutex);
        if (!t.errors.empty()) {
            std::printf("  errors     ");
            for (const auto& [kind, n] : t.errors)
                std::printf(" %s: %llu", kind.c_str(), static_cast<unsigned long long>(n));
            std::printf("\n");
        }
    }
    if (cfg.http_version != http::http_version::http1)
        std::printf("  protocol    %s: %llu HTTP/2 streams on %llu connection%s\n", protocol_of(sum).c_str(),
                    static_cast<unsigned long long>(sum.http2_requests),
                    static_cast<unsigned long long>(sum.http2_connections), sum.http2_connections == 1 ? "" : "s");
    std::printf("  tokens      %llu fetched, %llu requests resent after a 401\n",
                static_cast<unsigned long long>(sum.token_fetches),
                static_cast<unsigned long long>(sum.resends_after_401));
    if (!r.cfg.redis_url.empty())
        std::printf("  fleet       %llu tokens adopted from other workers, %llu times Redis could not help\n",
                    static_cast<unsigned long long>(sum.tokens_adopted),
                    static_cast<unsigned long long>(sum.shared_store_errors));
    if (!r.storms.empty()) {
        std::uint64_t n = 0;
        double longest = 0;
        for (const auto& s : r.storms) {
            n += s.count;
            longest = std::max(longest, s.end_s - s.start_s);
        }
        std::printf("  401 storms  %zu, %llu 401s, the longest drained in %.1fms\n", r.storms.size(),
                    static_cast<unsigned long long>(n), longest * 1000);
    }
    for (std::size_t k = 0; k < t.targets.size(); ++k) {
        const auto& tt = *t.targets[k];
        const auto& scope = r.targets[k].scope;
        std::printf("  target %zu    %s%s: %llu requests, %llu 2xx, %llu errors, p50 %s, p99 %s\n", k + 1,
                    r.targets[k].name().c_str(), scope ? (" (scope " + *scope + ")").c_str() : "", static_cast<unsigned long long>(tt.done.load()),
                    static_cast<unsigned long long>(tt.ok.load()), static_cast<unsigned long long>(tt.failed.load()),
                    format_ms(tt.latency.quantile(0.5)).c_str(), format_ms(tt.latency.quantile(0.99)).c_str());
    }
    std::fflush(stdout);
}

} // namespace

summary summarise(const tally& t, const senders& s, double duration_s) {
    summary sum;
    sum.requests = t.done.load();
    sum.ok = t.ok.load();
    sum.token_fetches = s.token_fetches();
    for (const auto* source : s.sources) {
        const auto st = source->stats();
        sum.tokens_adopted += st.shared_adopted;
        sum.shared_store_errors += st.shared_store_errors;
    }
    sum.resends_after_401 = s.resends_after_401();
    sum.duration_s = duration_s;
    for (const auto& loop : s.loops) {
        if (!loop.pool) continue;
        const auto st = loop.pool->stats();
        sum.wire_requests += st.requests + st.resends;
        sum.http2_requests += st.http2_requests;
        sum.http2_connections += st.http2_connections;
    }
    return sum;
}

std::string protocol_of(const summary& s) {
    if (s.http2_requests == 0) return "HTTP/1.1";
    return s.http2_requests >= s.wire_requests ? "HTTP/2" : "mixed";
}

run_report::run_report(const config& c, const tally& tl, const senders& s, const run_outcome& run)
    : cfg(c), t(tl), sum(summarise(tl, s, run.duration_s)), rows(run.rows.rows()), fetches(s.story->fetches(run.start)),
      storms(s.story->storms(run.start)), marks_dropped(s.story->dropped()), latency(tl.latency.snapshot()),
      targets(c.targets) {}

run_report::run_report(const config& c, const tally& tl, summary s, std::vector<timeline_row> rows_,
                       std::vector<token_fetch_mark> fetches_, std::vector<unauthorized_storm> storms_,
                       std::uint64_t dropped)
    : cfg(c), t(tl), sum(s), rows(std::move(rows_)), fetches(std::move(fetches_)), storms(std::move(storms_)),
      marks_dropped(dropped), latency(tl.latency.snapshot()), targets(c.targets) {}

std::string json_report(const run_report& r) {
    // Written by hand: fixed-point numbers read better than Boost.JSON's exponent form.
    const auto& t = r.t;
    std::string out = "{";
    bool first = true;
    member(out, first, "requests", std::to_string(r.sum.requests));
    member(out, first, "ok", std::to_string(r.sum.ok));
    std::string status = "{";
    bool first_status = true;
    for (std::size_t s = 0; s < t.status.size(); ++s)
        if (auto n = t.status[s].load()) member(status, first_status, std::to_string(s), std::to_string(n));
    member(out, first, "status", status + '}');
    std::string errors = "{";
    bool first_error = true;
    {
        std::lock_guard l(t.errors_mutex);
        for (const auto& [kind, n] : t.errors) member(errors, first_error, kind, std::to_string(n));
    }
    member(out, first, "errors", errors + '}');
    member(out, first, "token_fetches", std::to_string(r.sum.token_fetches));
    member(out, first, "tokens_adopted", std::to_string(r.sum.tokens_adopted));
    member(out, first, "shared_store_errors", std::to_string(r.sum.shared_store_errors));
    member(out, first, "retries_after_401", std::to_string(r.sum.resends_after_401));
    if (r.cfg.http_version != http::http_version::http1) {
        member(out, first, "protocol", json_string(protocol_of(r.sum)));
        member(out, first, "http2_requests", std::to_string(r.sum.http2_requests));
        member(out, first, "http2_connections", std::to_string(r.sum.http2_connections));
    }
    member(out, first, "duration_s", fixed(r.sum.duration_s));
    member(out, first, "rps", fixed(requests_per_second(r.sum), 1));
    const auto max = t.latency.max();
    member(out, first, "latency_ms",
           "{\"p50\":" + fixed(to_ms(histogram::quantile_of(r.latency, 0.5, max))) +
               ",\"p90\":" + fixed(to_ms(histogram::quantile_of(r.latency, 0.9, max))) +
               ",\"p99\":" + fixed(to_ms(histogram::quantile_of(r.latency, 0.99, max))) +
               ",\"max\":" + fixed(to_ms(max)) + '}');
    // What was run, for --collect and for the reader: the target (or how many), the requests
    // in flight and threads (over every worker, in a merged report).
    std::string run = "{";
    bool first_run = true;
    member(run, first_run, "to", json_string(to_of(r)));
    member(run, first_run, "concurrency", std::to_string(r.cfg.concurrency));
    member(run, first_run, "threads", std::to_string(r.cfg.threads));
    if (!r.cfg.collect_id.empty()) member(run, first_run, "workers", std::to_string(r.cfg.workers));
    member(out, first, "run", run + '}');
    member(out, first, "timeline", timeline_json(r.rows));
    member(out, first, "latency_distribution", distribution_json(r.latency));
    member(out, first, "token_story", token_story_json(r));
    if (!t.targets.empty()) member(out, first, "targets", targets_json(r));
    return out + '}';
}

std::string timeline_csv(const run_report& r) {
    std::string out;
    for (const auto& c : columns) {
        if (&c != columns) out += ',';
        out += c.name;
    }
    out += '\n';
    for (const auto& row : r.rows) {
        for (const auto& c : columns) {
            if (&c != columns) out += ',';
            out += c.value(row);
        }
        out += '\n';
    }
    return out;
}

void print_report(const run_report& r) {
    if (r.cfg.json)
        std::cout << json_report(r) << std::endl;
    else
        print_text(r);
}

std::optional<std::string> check_writable(const std::string& path) {
    // Checked without creating the file: a run that fails to start leaves nothing behind.
    namespace fs = std::filesystem;
    const fs::path p(path);
    std::error_code ec;
    if (fs::is_directory(p, ec)) return "cannot write '" + path + "': it is a directory";
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (fs::exists(p, ec) ? ::access(path.c_str(), W_OK) != 0 : ::access(dir.c_str(), W_OK) != 0)
        return "cannot write '" + path + "': " + std::generic_category().message(errno);
    return std::nullopt;
}

std::optional<std::string> write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc | std::ios::binary);
    f << text;
    f.close();
    if (!f) return "cannot write '" + path + "'";
    return std::nullopt;
}

} // namespace tokenflight::load
