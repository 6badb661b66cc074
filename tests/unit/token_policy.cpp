#include <tokenflight/token_policy.hpp>

#include <doctest/doctest.h>

using namespace tokenflight;
using namespace std::chrono_literals;
using detail::token_cache;
using action = token_cache::action;

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

TEST_CASE("token_cache: a cold cache starts exactly one refresh; everyone else waits") {
    token_cache c(1s);
    CHECK(c.on_request(t0, std::nullopt) == action::wait_and_refresh);
    CHECK(c.refreshing());
    for (int i = 0; i < 100; ++i) CHECK(c.on_request(t0, std::nullopt) == action::wait);
    CHECK(c.next_generation() == 1);
    c.on_refresh_succeeded(make_token(1, t0, 1h));
    CHECK_FALSE(c.refreshing());
    CHECK(c.on_request(t0 + 1s, std::nullopt) == action::serve);
    CHECK(c.current().generation() == 1);
}

TEST_CASE("token_cache: stale-but-valid serves and starts one background refresh") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 2s));
    CHECK(c.on_request(t0 + 1700ms, std::nullopt) == action::serve_and_refresh);
    CHECK(c.on_request(t0 + 1700ms, std::nullopt) == action::serve);
    CHECK(c.on_request(t0 + 1800ms, std::nullopt) == action::serve);
    // expired while the background refresh is still out: wait for it
    CHECK(c.on_request(t0 + 1950ms, std::nullopt) == action::wait);
}

TEST_CASE("token_cache: expired starts a refresh and waits") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 2s));
    CHECK(c.on_request(t0 + 5s, std::nullopt) == action::wait_and_refresh);
    CHECK(c.on_request(t0 + 5s, std::nullopt) == action::wait);
}

TEST_CASE("token_cache: newer-than g refreshes once, older g is served the current token") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 1h));
    CHECK(c.on_request(t0, std::uint64_t{1}) == action::wait_and_refresh);
    for (int i = 0; i < 50; ++i) CHECK(c.on_request(t0, std::uint64_t{1}) == action::wait);
    // a caller without a generation still gets the valid generation-1 token meanwhile
    CHECK(c.on_request(t0, std::nullopt) == action::serve);
    c.on_refresh_succeeded(make_token(2, t0, 1h));
    // late 401s for generation 1 cause no further refresh
    CHECK(c.on_request(t0, std::uint64_t{1}) == action::serve);
    CHECK(c.on_request(t0, std::uint64_t{0}) == action::serve);
    CHECK(c.current().generation() == 2);
}

TEST_CASE("token_cache: a failure makes callers fail fast for the cool-down, then retry") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    diagnostics d;
    d.http_status = 401;
    c.on_refresh_failed(errc::invalid_client, d, t0);
    CHECK(c.on_request(t0 + 500ms, std::nullopt) == action::fail);
    CHECK(c.last_error() == errc::invalid_client);
    CHECK(c.last_diagnostics().http_status == 401);
    CHECK(c.on_request(t0 + 1s, std::nullopt) == action::wait_and_refresh);
}

TEST_CASE("token_cache: a failed background refresh keeps serving the valid token") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 2s));
    CHECK(c.on_request(t0 + 1700ms, std::nullopt) == action::serve_and_refresh);
    c.on_refresh_failed(errc::server_unavailable, {}, t0 + 1700ms);
    // during the cool-down: still served, no new refresh
    CHECK(c.on_request(t0 + 1750ms, std::nullopt) == action::serve);
    CHECK(c.current().generation() == 1);
    // expired and still cooling down: fail fast
    CHECK(c.on_request(t0 + 2s, std::nullopt) == action::fail);
    // after the cool-down: refresh again
    CHECK(c.on_request(t0 + 2700ms, std::nullopt) == action::wait_and_refresh);
}

TEST_CASE("token_cache: after close every request fails") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 1h));
    c.close();
    CHECK(c.closed());
    CHECK(c.on_request(t0, std::nullopt) == action::fail);
    CHECK(c.last_error() == errc::closed);
}

TEST_CASE("token_cache: newer-than g on a cache that never held a token refreshes (no null token touched)") {
    token_cache c(1s);
    CHECK(c.on_request(t0, std::uint64_t{7}) == action::wait_and_refresh);
    CHECK(c.on_request(t0, std::uint64_t{0}) == action::wait);
    c.on_refresh_succeeded(make_token(1, t0, 1h));
    CHECK(c.on_request(t0, std::uint64_t{0}) == action::serve);
}

TEST_CASE("token_cache: a futile refresh spaces reactive refreshes 1 s, 2 s, 4 s ... 60 s; a 2xx ends it") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 1h));
    CHECK(c.on_request(t0, std::uint64_t{1}) == action::wait_and_refresh);
    c.on_refresh_succeeded(make_token(2, t0, 1h));

    // The resend with generation 2 got 401 too: futile. Every request that carried it reports.
    for (int i = 0; i < 10; ++i) c.on_futile_refresh(2, t0);
    CHECK(c.in_futility_backoff());
    auto now = t0;
    CHECK(c.on_request(now, std::uint64_t{2}) == action::held_back);
    CHECK(c.on_request(now, std::nullopt) == action::serve); // the valid token is still served
    CHECK(c.on_request(now, std::uint64_t{1}) == action::serve); // older g: no refresh needed

    std::uint64_t g = 2;
    clock::duration expected = 1s;
    for (int step = 0; step < 9; ++step) {
        CAPTURE(step);
        CHECK(c.on_request(now + expected - 1ms, g) == action::held_back);
        now += expected;
        CHECK(c.on_request(now, g) == action::wait_and_refresh); // one refresh per pause
        CHECK(c.on_request(now, g) == action::wait);
        c.on_refresh_succeeded(make_token(++g, now, 1h));
        c.on_futile_refresh(g, now); // that one did not help either
        expected = std::min<clock::duration>(expected * 2, 60s);
    }
    CHECK(expected == 60s);
    CHECK(c.on_request(now + 59s, g) == action::held_back);

    // A 2xx ends the backoff: the next 401 refreshes at once, and the next futility starts at 1 s.
    c.on_api_success(g);
    CHECK_FALSE(c.in_futility_backoff());
    CHECK(c.on_request(now, g) == action::wait_and_refresh);
    c.on_refresh_succeeded(make_token(++g, now, 1h));
    c.on_futile_refresh(g, now);
    CHECK(c.on_request(now + 999ms, g) == action::held_back);
    CHECK(c.on_request(now + 1s, g) == action::wait_and_refresh);
}

TEST_CASE("token_cache: a 401 for a token that worked is a revocation, never futility") {
    token_cache c(1s);
    c.on_request(t0, std::nullopt);
    c.on_refresh_succeeded(make_token(1, t0, 1h));
    for (std::uint64_t g = 1; g < 50; ++g) {
        c.on_api_success(g);            // the token worked ...
        c.on_futile_refresh(g, t0);     // ... then a resend with it was refused: revoked since
        CHECK_FALSE(c.in_futility_backoff());
        CHECK(c.on_request(t0, g) == action::wait_and_refresh); // so refresh at once, every time
        c.on_refresh_succeeded(make_token(g + 1, t0, 1h));
    }
    // An expired token is refreshed even during the backoff: that is not a reactive refresh.
    c.on_futile_refresh(50, t0);
    CHECK(c.in_futility_backoff());
    CHECK(c.on_request(t0 + 2h, std::uint64_t{50}) == action::wait_and_refresh);
}
