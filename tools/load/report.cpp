#include "report.hpp"

#include <tokenflight/http/url.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>

namespace tokenflight::load {

namespace {

double to_ms(std::chrono::nanoseconds d) {
    return static_cast<double>(d.count()) / 1e6;
}

std::string format_ms(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3fms", to_ms(d));
    return buf;
}

double requests_per_second(const summary& sum) {
    return sum.requests / std::max(sum.duration_s, 1e-9);
}

// `"key":n`, after a comma unless it is the object's first member.
void append_member(std::string& out, bool& first, const std::string& key, std::uint64_t n) {
    if (!first)
        out += ',';
    first = false;
    out += '"';
    out += key;
    out += "\":";
    out += std::to_string(n);
}

void print_json(const summary& sum, tally& t) {
    // Written by hand: fixed-point numbers read better than Boost.JSON's exponent form.
    std::string out = "{\"requests\":" + std::to_string(sum.requests) +
                      ",\"ok\":" + std::to_string(sum.ok) + ",\"status\":{";
    bool first = true;
    for (std::size_t s = 0; s < t.status.size(); ++s)
        if (auto n = t.status[s].load())
            append_member(out, first, std::to_string(s), n);
    out += "},\"errors\":{";
    first = true;
    {
        std::lock_guard l(t.errors_mutex);
        for (const auto& [kind, n] : t.errors)
            append_member(out, first, kind, n);
    }
    const auto& latency = t.latency;
    char tail[512];
    std::snprintf(tail, sizeof tail,
                  "},\"token_fetches\":%llu,\"retries_after_401\":%llu,\"duration_s\":%.3f,"
                  "\"rps\":%.1f,"
                  "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}",
                  static_cast<unsigned long long>(sum.token_fetches),
                  static_cast<unsigned long long>(sum.resends_after_401), sum.duration_s,
                  requests_per_second(sum), to_ms(latency.quantile(0.50)),
                  to_ms(latency.quantile(0.90)), to_ms(latency.quantile(0.99)),
                  to_ms(latency.max()));
    std::cout << out << tail << std::endl;
}

void print_text(const config& cfg, const summary& sum, tally& t) {
    std::printf("%llu requests in %.2fs to %s, %d in flight, %d thread%s\n",
                static_cast<unsigned long long>(sum.requests), sum.duration_s,
                http::redact_url(cfg.url).c_str(), cfg.concurrency, cfg.threads,
                cfg.threads == 1 ? "" : "s");
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
    std::printf("  tokens      %llu fetched, %llu requests resent after a 401\n",
                static_cast<unsigned long long>(sum.token_fetches),
                static_cast<unsigned long long>(sum.resends_after_401));
    std::fflush(stdout);
}

} // namespace

summary summarise(const tally& t, const senders& s, double duration_s) {
    summary sum;
    sum.requests = t.done.load();
    sum.ok = t.ok.load();
    sum.token_fetches = s.token_fetches();
    sum.resends_after_401 = s.resends_after_401();
    sum.duration_s = duration_s;
    return sum;
}

void print_report(const config& cfg, const summary& sum, tally& t) {
    if (cfg.json)
        print_json(sum, t);
    else
        print_text(cfg, sum, t);
}

} // namespace tokenflight::load
