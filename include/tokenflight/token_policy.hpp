#ifndef TOKENFLIGHT_TOKEN_POLICY_HPP
#define TOKENFLIGHT_TOKEN_POLICY_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/token.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

/// @file
/// When a token is refreshed and how failed refreshes back off. Free of I/O, with the time as a
/// parameter, so it is tested exhaustively with a clock the tests set.

namespace tokenflight {

/// When a cached token goes stale (refresh in the background) and when it stops being used.
///
/// The defaults scale with the token's lifetime L: refresh ahead by min(L/5, 5 min), stop using
/// it min(L/20, 30 s) before it expires. A 1-hour token is refreshed 5 minutes early and used
/// until 30 s before expiry; a 2-second token is refreshed 0.4 s early and used until 0.1 s before.
struct refresh_policy {
    std::optional<clock::duration> refresh_ahead; ///< override of min(L/5, max_refresh_ahead)
    std::optional<clock::duration> expiry_margin; ///< override of min(L/20, max_expiry_margin)
    clock::duration max_refresh_ahead = std::chrono::minutes(5);  ///< cap of the default refresh-ahead
    clock::duration max_expiry_margin = std::chrono::seconds(30); ///< cap of the default expiry margin
    /// Lifetime assumed when the server says nothing (no expires_in, expires_on or JWT exp).
    std::chrono::seconds default_lifetime{300};
};

/// The three instants of a token's life in the cache.
struct token_times {
    clock::time_point refresh_at;   ///< from here on the token is stale: refresh in the background
    clock::time_point usable_until; ///< from here on the token is not served
    clock::time_point expires_at;   ///< when the server said it expires
};

/// Computes the instants for a token whose request was sent at `sent` and that lives `lifetime`.
/// A server `refresh_in` hint moves the refresh point (never past usable_until).
token_times compute_token_times(clock::time_point sent, clock::duration lifetime,
                                std::optional<clock::duration> refresh_in, const refresh_policy& p);

/// Retries inside one refresh, and the cool-down after a failed one.
struct backoff_policy {
    clock::duration initial = std::chrono::milliseconds(100); ///< delay after the first failure (before jitter)
    clock::duration max = std::chrono::seconds(5);            ///< cap of the delay (before jitter)
    double multiplier = 2.0;                                  ///< growth of the delay per failure
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

} // namespace tokenflight

#endif
