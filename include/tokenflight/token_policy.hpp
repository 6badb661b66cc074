#ifndef TOKENFLIGHT_TOKEN_POLICY_HPP
#define TOKENFLIGHT_TOKEN_POLICY_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/token.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

/// @file
/// When a token is refreshed, how failed refreshes back off, and the single-flight cache state
/// machine. All of it is free of I/O and takes the time as a parameter, so it is tested exhaustively
/// with a clock the tests set.

namespace tokenflight {

/// When a cached token goes stale (refresh in the background) and when it stops being used.
///
/// The defaults scale with the token's lifetime L: refresh ahead by min(L/5, 5 min), stop using
/// it min(L/20, 30 s) before it expires. A 1-hour token is refreshed 5 minutes early and used
/// until 30 s before expiry; a 2-second token is refreshed 0.4 s early and used until 0.1 s before.
struct refresh_policy {
    std::optional<clock::duration> refresh_ahead; ///< override of min(L/5, max_refresh_ahead)
    std::optional<clock::duration> expiry_margin; ///< override of min(L/20, max_expiry_margin)
    clock::duration max_refresh_ahead = std::chrono::minutes(5);
    clock::duration max_expiry_margin = std::chrono::seconds(30);
    /// Lifetime assumed when the server says nothing (no expires_in, expires_on or JWT exp).
    std::chrono::seconds default_lifetime{300};
};

/// The three instants of a token's life in the cache.
struct token_times {
    clock::time_point refresh_at;
    clock::time_point usable_until;
    clock::time_point expires_at;
};

/// Computes the instants for a token whose request was sent at `sent` and that lives `lifetime`.
/// A server `refresh_in` hint moves the refresh point (never past usable_until).
token_times compute_token_times(clock::time_point sent, clock::duration lifetime,
                                std::optional<clock::duration> refresh_in, const refresh_policy& p);

/// Retries inside one refresh, and the cool-down after a failed one.
struct backoff_policy {
    clock::duration initial = std::chrono::milliseconds(100);
    clock::duration max = std::chrono::seconds(5);
    double multiplier = 2.0;
    int max_attempts = 4;                                 ///< token requests per refresh, at most
    clock::duration deadline = std::chrono::seconds(30);  ///< a refresh gives up after this long
    clock::duration cooldown = std::chrono::seconds(1);   ///< after a failure, callers fail fast this long

    /// Delay before attempt `failures + 1`, given `failures >= 1` failed attempts so far:
    /// "equal jitter", uniformly in [d/2, d] with d = min(max, initial * multiplier^(failures-1)).
    /// `unit_random` is in [0, 1). A Retry-After asks for at least that long.
    clock::duration delay(int failures, double unit_random,
                          std::optional<std::chrono::seconds> retry_after = std::nullopt) const;
};

/// What a cached token is worth at a given time.
enum class token_state {
    fresh,   ///< served at once
    stale,   ///< served at once, and a background refresh is due
    expired, ///< not served: callers wait for a refresh
};

/// Classifies `t` at `now`; an empty token is expired.
token_state classify(const access_token& t, clock::time_point now) noexcept;

namespace detail {

/// The single-flight token cache as a state machine: no I/O, no locks (its owner serialises it),
/// no clock of its own.
class token_cache {
public:
    /// What the owner must do for one request for a token.
    enum class action {
        serve,             ///< complete now with current()
        serve_and_refresh, ///< complete now with current() and start a background refresh
        wait,              ///< join the refresh in flight
        wait_and_refresh,  ///< start a refresh and wait for it
        fail,              ///< complete now with last_error() (cool-down after a failure, or closed)
        held_back,         ///< a reactive request during the futility backoff: complete now with
                           ///< errc::refresh_backoff (the caller's 401 stands)
    };

    explicit token_cache(clock::duration cooldown) : cooldown_(cooldown) {}

    /// A request at `now` for any usable token (`newer_than` empty) or for one whose generation
    /// is greater than `*newer_than`. Starting a refresh marks it in flight.
    action on_request(clock::time_point now, std::optional<std::uint64_t> newer_than);

    /// The refresh in flight succeeded with `t` (whose generation is next_generation()).
    void on_refresh_succeeded(access_token t);
    /// The refresh in flight failed at `now`; callers without a usable token fail fast until
    /// `now + cooldown`.
    void on_refresh_failed(error_code ec, diagnostics diag, clock::time_point now);
    /// From now on every request fails with errc::closed.
    void close();

    /// A request sent with generation `g` got a 2xx: that token works, and a futility backoff
    /// ends if `g` is at least the generation found futile (an older token's late 2xx does not).
    void on_api_success(std::uint64_t g) noexcept;
    /// A request resent with generation `g`, fetched because of a 401, got 401 again: the refresh
    /// was futile, unless `g` has worked before (then it was revoked since: a healthy revocation).
    /// From now until the backoff passes, reactive requests (newer_than set) that would refresh
    /// are held_back; each further futile generation doubles the pause, from 1 s up to 60 s.
    void on_futile_refresh(std::uint64_t g, clock::time_point now) noexcept;
    /// True while reactive refreshes are spaced by the futility backoff (whatever the time).
    bool in_futility_backoff() const noexcept { return futile_pause_ != clock::duration::zero(); }
    /// The highest generation that got a 2xx.
    std::uint64_t ok_generation() const noexcept { return ok_generation_; }

    static constexpr clock::duration first_futility_pause = std::chrono::seconds(1);
    static constexpr clock::duration max_futility_pause = std::chrono::seconds(60);

    const access_token& current() const noexcept { return current_; }
    std::uint64_t next_generation() const noexcept { return generation_ + 1; }
    bool refreshing() const noexcept { return refreshing_; }
    bool closed() const noexcept { return closed_; }
    const error_code& last_error() const noexcept { return last_error_; }
    const diagnostics& last_diagnostics() const noexcept { return last_diag_; }

private:
    bool cooling_down(clock::time_point now) const noexcept {
        return last_error_ && now < failed_at_ + cooldown_;
    }

    clock::duration cooldown_;
    access_token current_;
    std::uint64_t generation_ = 0;
    bool refreshing_ = false;
    bool closed_ = false;
    error_code last_error_;
    diagnostics last_diag_;
    clock::time_point failed_at_{};
    std::uint64_t ok_generation_ = 0;
    std::uint64_t futile_generation_ = 0;
    clock::duration futile_pause_ = clock::duration::zero(); // zero: no backoff
    clock::time_point futile_until_{};
};

} // namespace detail
} // namespace tokenflight

#endif
