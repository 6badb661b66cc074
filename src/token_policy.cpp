#include <tokenflight/token_policy.hpp>

#include <algorithm>
#include <cmath>

namespace tokenflight {

token_times compute_token_times(clock::time_point sent, clock::duration lifetime,
                                std::optional<clock::duration> refresh_in, const refresh_policy& p) {
    const auto ahead = p.refresh_ahead.value_or(std::min(lifetime / 5, p.max_refresh_ahead));
    const auto margin = p.expiry_margin.value_or(std::min(lifetime / 20, p.max_expiry_margin));
    token_times t;
    t.expires_at = sent + lifetime;
    t.usable_until = t.expires_at - std::min(margin, lifetime);
    t.refresh_at = refresh_in ? sent + *refresh_in : t.expires_at - std::min(ahead, lifetime);
    t.refresh_at = std::min(t.refresh_at, t.usable_until);
    return t;
}

clock::duration backoff_policy::delay(int failures, double unit_random,
                                      std::optional<std::chrono::seconds> retry_after) const {
    const double exponent = std::max(0, failures - 1);
    const double base = std::min<double>(static_cast<double>(max.count()),
                                         static_cast<double>(initial.count()) * std::pow(multiplier, exponent));
    const auto jittered = clock::duration(static_cast<clock::rep>(base / 2 + base / 2 * unit_random));
    if (retry_after) return std::max<clock::duration>(jittered, *retry_after);
    return jittered;
}

token_state classify(const access_token& t, clock::time_point now) noexcept {
    if (!t || now >= t.usable_until()) return token_state::expired;
    return now < t.refresh_at() ? token_state::fresh : token_state::stale;
}

namespace detail {

token_cache::action token_cache::on_request(clock::time_point now, std::optional<std::uint64_t> newer_than) {
    if (closed_) return action::fail;
    const auto state = classify(current_, now);
    // A source that never held a token has nothing newer than anything.
    const bool new_enough = !newer_than || (current_ && current_.generation() > *newer_than);
    if (state != token_state::expired && new_enough) {
        if (state == token_state::stale && !refreshing_ && !cooling_down(now)) {
            refreshing_ = true;
            return action::serve_and_refresh;
        }
        return action::serve;
    }
    if (refreshing_) return action::wait;
    // A reactive request while new tokens have not fixed the 401s: the still-usable token stands.
    if (newer_than && state != token_state::expired && now < futile_until_) return action::held_back;
    if (cooling_down(now)) return action::fail;
    refreshing_ = true;
    return action::wait_and_refresh;
}

void token_cache::on_refresh_succeeded(access_token t) {
    current_ = std::move(t);
    generation_ = current_.generation();
    refreshing_ = false;
    last_error_.clear();
    last_diag_.clear();
}

void token_cache::on_refresh_failed(error_code ec, diagnostics diag, clock::time_point now) {
    refreshing_ = false;
    last_error_ = ec;
    last_diag_ = std::move(diag);
    failed_at_ = now;
}

void token_cache::on_api_success(std::uint64_t g) noexcept {
    ok_generation_ = std::max(ok_generation_, g);
    // Only a token at least as new as the futile one proves that refreshing helps again; a late
    // 2xx for an older token says nothing about the new ones.
    if (g < futile_generation_) return;
    futile_pause_ = clock::duration::zero();
    futile_until_ = {};
}

void token_cache::on_futile_refresh(std::uint64_t g, clock::time_point now) noexcept {
    // Once per generation (every request that carried it reports), and never for a token that
    // worked: its 401s mean it was revoked, and the next refresh is expected to help.
    if (g <= ok_generation_ || g <= futile_generation_) return;
    futile_generation_ = g;
    futile_pause_ = futile_pause_ == clock::duration::zero() ? first_futility_pause
                                                             : std::min(futile_pause_ * 2, max_futility_pause);
    futile_until_ = now + futile_pause_;
}

void token_cache::close() {
    closed_ = true;
    last_error_ = errc::closed;
    last_diag_.clear();
}

} // namespace detail
} // namespace tokenflight
