// tokenflight-load's arrival schedule (-R): constant rates and linear ramps, and their parsing.
#include "schedule.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>

using namespace tokenflight;
using load::parse_rate;
using load::rate_schedule;
using namespace std::chrono_literals;

namespace {

double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

rate_schedule parsed(std::string_view text) {
    auto r = parse_rate(text);
    REQUIRE_MESSAGE(std::holds_alternative<rate_schedule>(r), text);
    return std::get<rate_schedule>(r);
}

// Requests due in [from, to) seconds.
std::uint64_t due_between(const rate_schedule& s, double from, double to) {
    std::uint64_t n = 0;
    for (std::uint64_t i = 0;; ++i) {
        auto d = s.due(i);
        if (!d || seconds(*d) >= to) break;
        if (seconds(*d) >= from) ++n;
    }
    return n;
}

} // namespace

TEST_CASE("a constant rate puts request i at i / rate, without end") {
    const auto s = parsed("250");
    CHECK(s.due(0) == clock::duration::zero());
    CHECK(s.due(1) == 4ms);
    CHECK(s.due(1000) == 4s);
    CHECK(s.due(1'000'000).has_value());
    CHECK_FALSE(s.length().has_value());
    CHECK_FALSE(s.requests().has_value());
    CHECK(s.rate_at(1h) == 250.0);
}

TEST_CASE("a ramp from 0: the integral of the rate reaches i when request i is due") {
    // 0 -> 100/s over 10 s: 500 requests, the i-th at sqrt(2 i / 10) s.
    const auto s = parsed("100:10s");
    CHECK(s.length() == 10s);
    CHECK(s.requests() == 500u);
    CHECK(s.due(0) == clock::duration::zero());
    for (std::uint64_t i : {1u, 5u, 123u, 499u}) {
        CAPTURE(i);
        CHECK(seconds(*s.due(i)) == doctest::Approx(std::sqrt(2.0 * static_cast<double>(i) / 10.0)).epsilon(1e-6));
    }
    CHECK_FALSE(s.due(500).has_value());
    CHECK(s.rate_at(5s) == doctest::Approx(50.0));
    // Half the time, a quarter of the requests.
    CHECK(due_between(s, 0, 5) == 125);
}

TEST_CASE("stages: ramp up, hold, ramp down; steps; due times never go back") {
    // 0 -> 200/s in 1 s (100), 200/s for 2 s (400), 200 -> 0 in 1 s (100), then 10 s of nothing.
    const auto s = parsed("200:1s,200:2s,0:1s,0:10s");
    CHECK(s.length() == 14s);
    CHECK(s.requests() == 600u);
    CHECK(due_between(s, 0, 1) == 100);
    CHECK(due_between(s, 1, 3) == 400);
    CHECK(due_between(s, 3, 4) == 100);
    CHECK_FALSE(s.due(600).has_value());
    clock::duration last{-1};
    for (std::uint64_t i = 0; i < 600; ++i) {
        const auto d = *s.due(i);
        CHECK(d >= last);
        last = d;
    }
    // A zero-length stage is a step: 0 -> 300 at once, then 300/s for 2 s.
    const auto step = parsed("300:0s,300:2s");
    CHECK(step.requests() == 600u);
    CHECK(step.due(300) == 1s);
    CHECK(step.rate_at(0s) == doctest::Approx(300.0));
    // Lengths in ms, s, m and h.
    CHECK(parsed("10:500ms").length() == 500ms);
    CHECK(parsed("10:2m").length() == 120s);
    CHECK(parsed("1:1h").length() == 1h);
}

TEST_CASE("-R values that are not a rate or stages are refused with what was expected") {
    for (const char* bad : {"0", "-5", "abc", "", "nan", "inf", "100:", "100:10", "100:10x", ":10s", "100:-1s",
                            "-1:10s", "0:10s", "100:0s", "100:10s,", "100:10s,,5:1s", "1:200h"}) {
        CAPTURE(bad);
        auto r = parse_rate(bad);
        CHECK(std::holds_alternative<std::string>(r));
    }
}
