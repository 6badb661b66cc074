#include <tokenflight/token_policy.hpp>

#include <doctest/doctest.h>

using namespace tokenflight;
using namespace std::chrono_literals;

namespace {
const clock::time_point t0 = clock::time_point(1000h);

access_token make_token(std::uint64_t gen, clock::time_point sent, clock::duration lifetime) {
    auto times = compute_token_times(sent, lifetime, std::nullopt, refresh_policy{});
    auto d = std::make_shared<access_token::data>();
    d->value = "token-" + std::to_string(gen);
    d->type = "Bearer";
    d->issued_at = sent;
    d->refresh_at = times.refresh_at;
    d->usable_until = times.usable_until;
    d->expires_at = times.expires_at;
    d->generation = gen;
    return access_token(d);
}
} // namespace

TEST_CASE("refresh-ahead and expiry margin scale with the lifetime") {
    refresh_policy p;
    auto hour = compute_token_times(t0, 1h, std::nullopt, p);
    CHECK(hour.expires_at == t0 + 1h);
    CHECK(hour.refresh_at == t0 + 55min);  // min(12 min, 5 min) ahead
    CHECK(hour.usable_until == t0 + 1h - 30s); // min(3 min, 30 s) margin

    auto two = compute_token_times(t0, 2s, std::nullopt, p);
    CHECK(two.refresh_at == t0 + 1600ms);
    CHECK(two.usable_until == t0 + 1900ms);

    p.refresh_ahead = 10s;
    p.expiry_margin = 1s;
    auto fixed = compute_token_times(t0, 1min, std::nullopt, p);
    CHECK(fixed.refresh_at == t0 + 50s);
    CHECK(fixed.usable_until == t0 + 59s);
}

TEST_CASE("a refresh_in hint moves the refresh point but never past usable_until") {
    refresh_policy p;
    CHECK(compute_token_times(t0, 1h, 10min, p).refresh_at == t0 + 10min);
    CHECK(compute_token_times(t0, 1h, 2h, p).refresh_at == t0 + 1h - 30s);
}

TEST_CASE("tokens are fresh, then stale, then expired") {
    auto t = make_token(1, t0, 2s);
    CHECK(classify(t, t0) == token_state::fresh);
    CHECK(classify(t, t0 + 1599ms) == token_state::fresh);
    CHECK(classify(t, t0 + 1600ms) == token_state::stale);
    CHECK(classify(t, t0 + 1899ms) == token_state::stale);
    CHECK(classify(t, t0 + 1900ms) == token_state::expired);
    CHECK(classify(access_token{}, t0) == token_state::expired);
}

TEST_CASE("backoff grows exponentially with equal jitter, capped, and honours Retry-After") {
    backoff_policy b;
    CHECK(b.delay(1, 0.0) == 50ms);
    CHECK(b.delay(1, 0.999999) <= 100ms);
    CHECK(b.delay(2, 0.0) == 100ms);
    CHECK(b.delay(3, 0.0) == 200ms);
    CHECK(b.delay(20, 0.0) == 2500ms); // max 5 s, halved by the jitter floor
    CHECK(b.delay(20, 0.999999) <= 5s);
    CHECK(b.delay(1, 0.5, 3s) == 3s);
    CHECK(b.delay(3, 0.0, 0s) == 200ms);
}
