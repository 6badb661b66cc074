// Private to tokenflight: the retry policy of one token refresh, as a state machine.
#ifndef TOKENFLIGHT_SRC_REFRESH_FSM_HPP
#define TOKENFLIGHT_SRC_REFRESH_FSM_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/token_policy.hpp>

#include <boost/asio/cancellation_type.hpp>

#include <chrono>
#include <optional>

namespace tokenflight::detail {

/// What happened since the refresh's last step.
struct refresh_event {
    enum class kind {
        start,    ///< the refresh begins
        response, ///< a token request ended: `ec` empty when it brought a token
        timer,    ///< the pause before a retry ended: `ec` set when the timer was cancelled
    };
    kind what = kind::start;
    clock::time_point now;
    error_code ec;
    /// response: the answer's Retry-After.
    std::optional<std::chrono::seconds> retry_after;
    /// The cancellation requested since the refresh began (see refresh_fsm).
    boost::asio::cancellation_type cancelled = boost::asio::cancellation_type::none;
};

/// What the driver must do next.
struct refresh_action {
    enum class kind {
        send, ///< send token request number `attempt`, authenticated with `method`, within `timeout`
        wait, ///< pause `delay`; `ec` is the failure that will be retried
        done, ///< the refresh is over: succeeded when `ec` is empty, else failed with `ec`
    };
    kind what = kind::done;
    int attempt = 0;           ///< send: its number (from 1); wait, done: requests sent so far
    client_auth method = client_auth::basic;
    clock::duration timeout{}; ///< send
    clock::duration delay{};   ///< wait
    error_code ec;             ///< wait, done
};

/// The retry policy of one token refresh, with no I/O and no clock of its own: the auth-method
/// fallback, the backoff with jitter and Retry-After, the attempt limit, the deadline and
/// cancellation. The driver (detail::token_source_impl::refresh) sends, waits and reports; this
/// decides. Tested step by step with a set clock in tests/unit/refresh_fsm.cpp.
///
/// - The first request uses `preferred`, the method that worked last. With client_auth::automatic
///   configured, an `invalid_client` answer to Basic authentication is followed at once by one
///   request with client_secret_post (not counted as a failure); method() then says what to
///   remember when the refresh succeeds.
/// - A `use_dpop_nonce` answer (RFC 9449 section 8) is followed at once by one request (the
///   driver has taken the nonce from the answer), not counted as a failure; a second such answer
///   right after it is a permanent failure.
/// - A transient failure is retried after backoff_policy::delay (Retry-After respected) while
///   fewer than max_attempts failures were seen and the pause ends before the deadline
///   (start + backoff.deadline); a permanent one ends the refresh. Each request's timeout is the
///   request timeout, cut to what is left until the deadline (at least 1 ms).
/// - Cancellation: a token request has no effect worth protecting, so every type (terminal,
///   partial, total) ends the refresh with `operation_aborted` at the next step, except that a
///   token already received is kept (done with success): waiters are better served by it.
class refresh_fsm {
public:
    /// `unit_random` returns values in [0, 1) for the jitter.
    refresh_fsm(const backoff_policy& backoff, clock::duration request_timeout, client_auth configured,
                client_auth preferred, double (*unit_random)()) noexcept;

    /// The next step after `e`. The first event is kind::start; after done, done again.
    refresh_action resume(const refresh_event& e);

    /// The method of the last request sent.
    client_auth method() const noexcept { return method_; }
    /// True when the fallback switched the method: remember method() if the refresh succeeded.
    bool switched_method() const noexcept { return switched_; }

private:
    enum class state { initial, sending, waiting, done };

    refresh_action send(clock::time_point now);
    refresh_action finish(error_code ec);

    const backoff_policy backoff_;
    const clock::duration request_timeout_;
    const client_auth configured_;
    double (*unit_random_)();
    state state_ = state::initial;
    client_auth method_;
    bool switched_ = false;
    bool nonce_resent_ = false; // the last request was the resend after a use_dpop_nonce answer
    clock::time_point deadline_{};
    int attempt_ = 0;  // requests sent
    int failures_ = 0; // requests that failed, the auth fallback's not counted
    error_code result_;
};

} // namespace tokenflight::detail

#endif
