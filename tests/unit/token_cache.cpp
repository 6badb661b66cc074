#include "token_cache.hpp"

#include <doctest/doctest.h>

using namespace tokenflight;
using namespace std::chrono_literals;
using detail::token_cache;
using action = token_cache::action;

namespace {
const clock::time_point t0 = clock::time_point(1000h);

// A token fetched at `sent` that lives `lifetime`; the cache gives it its generation.
access_token::data make_data(clock::time_point sent, clock::duration lifetime) {
    return detail::token_data("token", "Bearer", "", sent, compute_token_times(sent, lifetime, std::nullopt, refresh_policy{}));
}
} // namespace

TEST_CASE("token_cache: a cold cache starts exactly one refresh; everyone else waits") {
    token_cache c(1s);
    CHECK(c.on_request(t0) == action::wait_and_refresh);
    CHECK(c.refreshing());
    for (int i = 0; i < 100; ++i) CHECK(c.on_request(t0) == action::wait);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 1);
    CHECK_FALSE(c.refreshing());
    CHECK(c.on_request(t0 + 1s) == action::serve);
    CHECK(c.current().generation() == 1);
}

TEST_CASE("token_cache: stale-but-valid serves and starts one background refresh") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 2s)).generation() == 1);
    CHECK(c.on_request(t0 + 1700ms) == action::serve_and_refresh);
    CHECK(c.on_request(t0 + 1700ms) == action::serve);
    CHECK(c.on_request(t0 + 1800ms) == action::serve);
    // expired while the background refresh is still out: wait for it
    CHECK(c.on_request(t0 + 1950ms) == action::wait);
}

TEST_CASE("token_cache: expired starts a refresh and waits") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 2s)).generation() == 1);
    CHECK(c.on_request(t0 + 5s) == action::wait_and_refresh);
    CHECK(c.on_request(t0 + 5s) == action::wait);
}

TEST_CASE("token_cache: newer-than g refreshes once, older g is served the current token") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 1);
    CHECK(c.on_request(t0, 1) == action::wait_and_refresh);
    for (int i = 0; i < 50; ++i) CHECK(c.on_request(t0, 1) == action::wait);
    // a caller without a generation still gets the valid generation-1 token meanwhile
    CHECK(c.on_request(t0) == action::serve);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 2);
    // late 401s for generation 1 cause no further refresh
    CHECK(c.on_request(t0, 1) == action::serve);
    CHECK(c.on_request(t0, 0) == action::serve);
    CHECK(c.current().generation() == 2);
}

TEST_CASE("token_cache: a failure makes callers fail fast for the cool-down, then retry") {
    token_cache c(1s);
    c.on_request(t0);
    diagnostics d;
    d.http_status = 401;
    c.on_refresh_failed(oauth_errc::invalid_client, d, t0);
    CHECK(c.on_request(t0 + 500ms) == action::fail);
    CHECK(c.last_error() == oauth_errc::invalid_client);
    CHECK(c.last_diagnostics().http_status == 401);
    CHECK(c.on_request(t0 + 1s) == action::wait_and_refresh);
}

TEST_CASE("token_cache: a failed background refresh keeps serving the valid token") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 2s)).generation() == 1);
    CHECK(c.on_request(t0 + 1700ms) == action::serve_and_refresh);
    c.on_refresh_failed(errc::server_unavailable, {}, t0 + 1700ms);
    // during the cool-down: still served, no new refresh
    CHECK(c.on_request(t0 + 1750ms) == action::serve);
    CHECK(c.current().generation() == 1);
    // expired and still cooling down: fail fast
    CHECK(c.on_request(t0 + 2s) == action::fail);
    // after the cool-down: refresh again
    CHECK(c.on_request(t0 + 2700ms) == action::wait_and_refresh);
}

TEST_CASE("token_cache: after close every request fails") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 1);
    c.close();
    CHECK(c.closed());
    CHECK(c.on_request(t0) == action::fail);
    CHECK(c.last_error() == errc::closed);
}

TEST_CASE("token_cache: newer-than g on a cache that never held a token refreshes (no null token touched)") {
    token_cache c(1s);
    CHECK(c.on_request(t0, 7) == action::wait_and_refresh);
    CHECK(c.on_request(t0, 0) == action::wait);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 1);
    CHECK(c.on_request(t0, 0) == action::serve);
}

TEST_CASE("token_cache: a futile refresh spaces reactive refreshes 1 s, 2 s, 4 s ... 60 s; a 2xx ends it") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 1);
    CHECK(c.on_request(t0, 1) == action::wait_and_refresh);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 2);

    // The resend with generation 2 got 401 too: futile. Every request that carried it reports.
    for (int i = 0; i < 10; ++i) c.on_futile_refresh(2, t0);
    CHECK(c.in_futility_backoff());
    auto now = t0;
    CHECK(c.on_request(now, 2) == action::held_back);
    CHECK(c.on_request(now) == action::serve); // the valid token is still served
    CHECK(c.on_request(now, 1) == action::serve); // older g: no refresh needed

    std::uint64_t g = 2;
    clock::duration expected = 1s;
    for (int step = 0; step < 9; ++step) {
        CAPTURE(step);
        CHECK(c.on_request(now + expected - 1ms, g) == action::held_back);
        now += expected;
        CHECK(c.on_request(now, g) == action::wait_and_refresh); // one refresh per pause
        CHECK(c.on_request(now, g) == action::wait);
        ++g;
        CHECK(c.on_refresh_succeeded(make_data(now, 1h)).generation() == g);
        c.on_futile_refresh(g, now); // that one did not help either
        expected = std::min<clock::duration>(expected * 2, 60s);
    }
    CHECK(expected == 60s);
    CHECK(c.on_request(now + 59s, g) == action::held_back);

    // A 2xx ends the backoff: the next 401 refreshes at once, and the next futility starts at 1 s.
    c.on_api_success(g);
    CHECK_FALSE(c.in_futility_backoff());
    CHECK(c.on_request(now, g) == action::wait_and_refresh);
    ++g;
    CHECK(c.on_refresh_succeeded(make_data(now, 1h)).generation() == g);
    c.on_futile_refresh(g, now);
    CHECK(c.on_request(now + 999ms, g) == action::held_back);
    CHECK(c.on_request(now + 1s, g) == action::wait_and_refresh);
}

TEST_CASE("token_cache: a 401 for a token that worked is a revocation, never futility") {
    token_cache c(1s);
    c.on_request(t0);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 1);
    for (std::uint64_t g = 1; g < 50; ++g) {
        c.on_api_success(g);            // the token worked ...
        c.on_futile_refresh(g, t0);     // ... then a resend with it was refused: revoked since
        CHECK_FALSE(c.in_futility_backoff());
        CHECK(c.on_request(t0, g) == action::wait_and_refresh); // so refresh at once, every time
        CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == g + 1);
    }
    // An expired token is refreshed even during the backoff: that is not a reactive refresh.
    c.on_futile_refresh(50, t0);
    CHECK(c.in_futility_backoff());
    CHECK(c.on_request(t0 + 2h, 50) == action::wait_and_refresh);
}

TEST_CASE("token_cache: the cache alone stamps generations, from 1 up; 0 asks for any token") {
    token_cache c(1s);
    CHECK(c.on_request(t0, 0) == action::wait_and_refresh);
    auto d = make_data(t0, 1h);
    d.generation = 42; // whatever the caller put there
    CHECK(c.on_refresh_succeeded(d).generation() == 1);
    CHECK(c.on_request(t0, 0) == action::serve); // any token: generation 1 will do
    CHECK(c.on_request(t0, 1) == action::wait_and_refresh);
    CHECK(c.on_refresh_succeeded(make_data(t0, 1h)).generation() == 2);
    CHECK(c.current().generation() == 2);
    c.on_request(t0, 2);
    c.on_refresh_failed(errc::server_unavailable, {}, t0); // a failure consumes no generation
    CHECK(c.on_request(t0 + 2s, 2) == action::wait_and_refresh);
    CHECK(c.on_refresh_succeeded(make_data(t0 + 2s, 1h)).generation() == 3);
}
