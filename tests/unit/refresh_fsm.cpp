// The retry policy of one token refresh, step by step with a set clock: once per outcome and per
// cancellation type. No socket, no timer: the tests play the driver.
#include "refresh_fsm.hpp"

#include <boost/asio/error.hpp>
#include <doctest/doctest.h>

using namespace tokenflight;
using namespace std::chrono_literals;
using detail::refresh_action;
using detail::refresh_event;
using detail::refresh_fsm;
using kind = refresh_action::kind;
using boost::asio::cancellation_type;

namespace {
const clock::time_point t0 = clock::time_point(1000h);

double half() { return 0.5; }

backoff_policy policy() {
    backoff_policy b; // 100 ms doubling to 5 s, 4 attempts, 30 s deadline
    return b;
}

refresh_fsm make(client_auth configured = client_auth::basic, client_auth preferred = client_auth::basic,
                 backoff_policy b = policy()) {
    return refresh_fsm(b, 10s, configured, preferred, &half);
}

refresh_event start(clock::time_point now = t0, cancellation_type c = cancellation_type::none) {
    refresh_event e;
    e.what = refresh_event::kind::start;
    e.now = now;
    e.cancelled = c;
    return e;
}

refresh_event response(clock::time_point now, error_code ec = {}, std::optional<std::chrono::seconds> retry_after = {},
                       cancellation_type c = cancellation_type::none) {
    refresh_event e;
    e.what = refresh_event::kind::response;
    e.now = now;
    e.ec = ec;
    e.retry_after = retry_after;
    e.cancelled = c;
    return e;
}

refresh_event timer(clock::time_point now, error_code ec = {}, cancellation_type c = cancellation_type::none) {
    refresh_event e;
    e.what = refresh_event::kind::timer;
    e.now = now;
    e.ec = ec;
    e.cancelled = c;
    return e;
}

const cancellation_type every_type[] = {cancellation_type::terminal, cancellation_type::partial,
                                        cancellation_type::total};
} // namespace

TEST_CASE("refresh_fsm: a token on the first request ends the refresh") {
    auto fsm = make();
    auto a = fsm.resume(start());
    CHECK(a.what == kind::send);
    CHECK(a.attempt == 1);
    CHECK(a.method == client_auth::basic);
    CHECK(a.timeout == 10s);
    a = fsm.resume(response(t0 + 20ms));
    CHECK(a.what == kind::done);
    CHECK_FALSE(a.ec);
    CHECK(a.attempt == 1);
    CHECK_FALSE(fsm.switched_method());
    // Done stays done.
    a = fsm.resume(timer(t0 + 1s));
    CHECK(a.what == kind::done);
    CHECK_FALSE(a.ec);
}

TEST_CASE("refresh_fsm: a permanent error is not retried") {
    for (error_code ec : {error_code(oauth_errc::invalid_client), error_code(oauth_errc::invalid_scope),
                          error_code(errc::malformed_response), error_code(errc::token_endpoint_status),
                          error_code(errc::invalid_token_response)}) {
        CAPTURE(ec.message());
        auto fsm = make();
        fsm.resume(start());
        auto a = fsm.resume(response(t0, ec));
        CHECK(a.what == kind::done);
        CHECK(a.ec == ec);
        CHECK(a.attempt == 1);
    }
}

TEST_CASE("refresh_fsm: transient errors back off with jitter, then a token ends the refresh") {
    auto fsm = make();
    fsm.resume(start());
    auto a = fsm.resume(response(t0, errc::server_unavailable));
    CHECK(a.what == kind::wait);
    CHECK(a.delay == 75ms); // equal jitter: 100 ms * (0.5 + 0.5 * 0.5)
    CHECK(a.ec == errc::server_unavailable);
    a = fsm.resume(timer(t0 + 75ms));
    CHECK(a.what == kind::send);
    CHECK(a.attempt == 2);
    a = fsm.resume(response(t0 + 100ms, oauth_errc::temporarily_unavailable));
    CHECK(a.what == kind::wait);
    CHECK(a.delay == 150ms); // doubled
    a = fsm.resume(timer(t0 + 250ms));
    CHECK(a.what == kind::send);
    CHECK(a.attempt == 3);
    a = fsm.resume(response(t0 + 300ms));
    CHECK(a.what == kind::done);
    CHECK_FALSE(a.ec);
    CHECK(a.attempt == 3);
}

TEST_CASE("refresh_fsm: max_attempts failures end the refresh with the last error") {
    auto fsm = make();
    auto now = t0;
    auto a = fsm.resume(start(now));
    int waits = 0;
    while (a.what != kind::done) {
        if (a.what == kind::send) {
            a = fsm.resume(response(now, make_error_code(boost::asio::error::connection_refused)));
        } else {
            ++waits;
            now += a.delay;
            a = fsm.resume(timer(now));
        }
    }
    CHECK(a.ec == boost::asio::error::connection_refused);
    CHECK(a.attempt == 4);
    CHECK(waits == 3);
}

TEST_CASE("refresh_fsm: Retry-After is a floor for the pause, and a pause past the deadline gives up") {
    auto fsm = make();
    fsm.resume(start());
    auto a = fsm.resume(response(t0, errc::server_unavailable, 3s));
    CHECK(a.what == kind::wait);
    CHECK(a.delay == 3s);
    fsm.resume(timer(t0 + 3s));
    // 40 s is past the 30 s deadline: no pause is started that could not end in time.
    a = fsm.resume(response(t0 + 3s, errc::server_unavailable, 40s));
    CHECK(a.what == kind::done);
    CHECK(a.ec == errc::server_unavailable);
    CHECK(a.attempt == 2);
}

TEST_CASE("refresh_fsm: each request's timeout is cut to what is left until the deadline") {
    backoff_policy b = policy();
    b.deadline = 12s;
    b.max_attempts = 10;
    auto fsm = make(client_auth::basic, client_auth::basic, b);
    auto a = fsm.resume(start());
    CHECK(a.timeout == 10s);
    a = fsm.resume(response(t0 + 10s, errc::request_timeout));
    CHECK(a.what == kind::wait);
    a = fsm.resume(timer(t0 + 10s + a.delay));
    CHECK(a.what == kind::send);
    CHECK(a.timeout == 2s - 75ms);
    // A timer that fires late, past the deadline: the request still gets 1 ms rather than none.
    a = fsm.resume(response(t0 + 11800ms, errc::request_timeout));
    REQUIRE(a.what == kind::wait);
    CHECK(a.delay == 150ms);
    a = fsm.resume(timer(t0 + 12s + 5ms));
    CHECK(a.what == kind::send);
    CHECK(a.timeout == 1ms);
}

TEST_CASE("refresh_fsm: automatic auth falls back from Basic to post once, at once, and says so") {
    auto fsm = make(client_auth::automatic);
    auto a = fsm.resume(start());
    CHECK(a.method == client_auth::basic);
    a = fsm.resume(response(t0, oauth_errc::invalid_client));
    CHECK(a.what == kind::send); // no pause: not a failure of the server
    CHECK(a.method == client_auth::post);
    CHECK(a.attempt == 2);
    CHECK(fsm.switched_method());
    // The fallback is not counted as a failure: the first transient failure waits the first delay.
    a = fsm.resume(response(t0, errc::server_unavailable));
    CHECK(a.what == kind::wait);
    CHECK(a.delay == 75ms);
    a = fsm.resume(timer(t0 + 75ms));
    CHECK(a.method == client_auth::post);
    // invalid_client with post too: final, no second fallback.
    a = fsm.resume(response(t0 + 80ms, oauth_errc::invalid_client));
    CHECK(a.what == kind::done);
    CHECK(a.ec == oauth_errc::invalid_client);
    CHECK(fsm.method() == client_auth::post);
}

TEST_CASE("refresh_fsm: without automatic auth, invalid_client is final; a remembered post is used first") {
    auto basic = make(client_auth::basic);
    basic.resume(start());
    auto a = basic.resume(response(t0, oauth_errc::invalid_client));
    CHECK(a.what == kind::done);
    CHECK(a.ec == oauth_errc::invalid_client);
    CHECK_FALSE(basic.switched_method());

    auto remembered = make(client_auth::automatic, client_auth::post);
    a = remembered.resume(start());
    CHECK(a.method == client_auth::post);
    a = remembered.resume(response(t0, oauth_errc::invalid_client));
    CHECK(a.what == kind::done);
    CHECK_FALSE(remembered.switched_method());

    // `automatic` is a policy, never a method on the wire.
    auto from_automatic = make(client_auth::automatic, client_auth::automatic);
    CHECK(from_automatic.resume(start()).method == client_auth::basic);
}

TEST_CASE("refresh_fsm: every cancellation type ends the refresh at each step, a token received is kept") {
    for (auto type : every_type) {
        CAPTURE(static_cast<int>(type));
        { // before the first request
            auto fsm = make();
            auto a = fsm.resume(start(t0, type));
            CHECK(a.what == kind::done);
            CHECK(a.ec == boost::asio::error::operation_aborted);
            CHECK(a.attempt == 0);
        }
        { // a failed request answered while cancelled: no pause, no retry
            auto fsm = make();
            fsm.resume(start());
            auto a = fsm.resume(response(t0, errc::server_unavailable, {}, type));
            CHECK(a.what == kind::done);
            CHECK(a.ec == boost::asio::error::operation_aborted);
        }
        { // the auth fallback is not sent either
            auto fsm = make(client_auth::automatic);
            fsm.resume(start());
            auto a = fsm.resume(response(t0, oauth_errc::invalid_client, {}, type));
            CHECK(a.what == kind::done);
            CHECK(a.ec == boost::asio::error::operation_aborted);
        }
        { // during the pause: the timer is cancelled
            auto fsm = make();
            fsm.resume(start());
            fsm.resume(response(t0, errc::server_unavailable));
            auto a = fsm.resume(timer(t0 + 1ms, boost::asio::error::operation_aborted, type));
            CHECK(a.what == kind::done);
            CHECK(a.ec == boost::asio::error::operation_aborted);
            CHECK(a.attempt == 1);
        }
        { // the pause ended just as the cancellation came: no further request
            auto fsm = make();
            fsm.resume(start());
            fsm.resume(response(t0, errc::server_unavailable));
            auto a = fsm.resume(timer(t0 + 75ms, {}, type));
            CHECK(a.what == kind::done);
            CHECK(a.ec == boost::asio::error::operation_aborted);
        }
        { // a token that arrived anyway is a success
            auto fsm = make();
            fsm.resume(start());
            auto a = fsm.resume(response(t0, {}, {}, type));
            CHECK(a.what == kind::done);
            CHECK_FALSE(a.ec);
        }
    }
}

TEST_CASE("refresh_fsm: a timer that fails without a cancellation ends the refresh too") {
    auto fsm = make();
    fsm.resume(start());
    fsm.resume(response(t0, errc::connection_closed));
    auto a = fsm.resume(timer(t0 + 75ms, boost::asio::error::operation_aborted));
    CHECK(a.what == kind::done);
    CHECK(a.ec == boost::asio::error::operation_aborted);
}

TEST_CASE("refresh_fsm: use_dpop_nonce is resent at once, once in a row, not counted as a failure") {
    auto fsm = make();
    CHECK(fsm.resume(start()).attempt == 1);
    auto a = fsm.resume(response(t0 + 10ms, oauth_errc::use_dpop_nonce));
    CHECK(a.what == kind::send); // at once: no wait
    CHECK(a.attempt == 2);
    a = fsm.resume(response(t0 + 20ms));
    CHECK(a.what == kind::done);
    CHECK_FALSE(a.ec);

    // A second demand right after the resend: the nonce did not help, permanent.
    auto twice = make();
    twice.resume(start());
    CHECK(twice.resume(response(t0 + 10ms, oauth_errc::use_dpop_nonce)).what == kind::send);
    a = twice.resume(response(t0 + 20ms, oauth_errc::use_dpop_nonce));
    CHECK(a.what == kind::done);
    CHECK(a.ec == oauth_errc::use_dpop_nonce);
    CHECK(a.attempt == 2);

    // After another answer in between (a transient failure, retried), a new demand (the nonce
    // rotated meanwhile) gets its own resend; the nonce resends count against no attempt limit.
    backoff_policy b = policy();
    b.max_attempts = 2;
    auto rotated = make(client_auth::basic, client_auth::basic, b);
    rotated.resume(start());
    CHECK(rotated.resume(response(t0 + 10ms, oauth_errc::use_dpop_nonce)).what == kind::send);
    a = rotated.resume(response(t0 + 20ms, errc::server_unavailable));
    CHECK(a.what == kind::wait);
    CHECK(rotated.resume(timer(t0 + a.delay + 20ms)).what == kind::send);
    a = rotated.resume(response(t0 + 1s, oauth_errc::use_dpop_nonce));
    CHECK(a.what == kind::send);
    CHECK(a.attempt == 4);
    a = rotated.resume(response(t0 + 1s + 10ms));
    CHECK(a.what == kind::done);
    CHECK_FALSE(a.ec);
}

TEST_CASE("refresh_fsm: a configured assertion method is used from the first request, with no fallback") {
    for (auto m : {client_auth::private_key_jwt, client_auth::client_secret_jwt}) {
        auto fsm = make(m, m);
        auto a = fsm.resume(start());
        CHECK(a.method == m);
        a = fsm.resume(response(t0 + 10ms, oauth_errc::invalid_client));
        CHECK(a.what == kind::done);
        CHECK(a.ec == oauth_errc::invalid_client);
        CHECK_FALSE(fsm.switched_method());
    }
}
