// Private to tokenflight: the single-flight token cache as a state machine.
#ifndef TOKENFLIGHT_SRC_TOKEN_CACHE_HPP
#define TOKENFLIGHT_SRC_TOKEN_CACHE_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/token.hpp>
#include <tokenflight/token_policy.hpp>

#include <cstdint>
#include <string>

namespace tokenflight::detail {

/// What a token is made of before the cache gives it a generation.
access_token::data token_data(std::string value, std::string type, std::string scope, clock::time_point sent,
                              const token_times& times);

/// The single-flight token cache as a state machine: no I/O, no locks (its owner serialises it),
/// no clock of its own. It owns the generation: tokens get 1, 2, 3... as refreshes succeed.
///
/// Generations are plain integers and 0 means "any token": a request for a token newer than 0
/// takes whatever usable token there is, since every token has a generation of at least 1.
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

    /// A request at `now` for a usable token whose generation is greater than `newer_than`
    /// (0: any usable token). Starting a refresh marks it in flight.
    action on_request(clock::time_point now, std::uint64_t newer_than = 0);

    /// The refresh in flight succeeded: `d` becomes the current token, with the next generation
    /// stamped on it. Returns the token.
    const access_token& on_refresh_succeeded(access_token::data d);
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
    std::uint64_t generation_ = 0; // of current_; the next token gets generation_ + 1
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

} // namespace tokenflight::detail

#endif
