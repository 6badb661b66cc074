#include "token_cache.hpp"

namespace tokenflight::detail {

access_token::data token_data(std::string value, std::string type, std::string scope, clock::time_point sent,
                              const token_times& times) {
    access_token::data d;
    d.value = std::move(value);
    d.type = std::move(type);
    d.scope = std::move(scope);
    d.issued_at = sent;
    d.refresh_at = times.refresh_at;
    d.usable_until = times.usable_until;
    d.expires_at = times.expires_at;
    return d;
}

token_cache::action token_cache::on_request(clock::time_point now, std::uint64_t newer_than) {
    if (closed_) return action::fail;
    const auto state = classify(current_, now);
    // Every token is newer than 0; a source that never held a token has nothing newer than anything.
    const bool new_enough = current_ && generation_ > newer_than;
    if (state != token_state::expired && new_enough) {
        if (state == token_state::stale && !refreshing_ && !cooling_down(now)) {
            refreshing_ = true;
            return action::serve_and_refresh;
        }
        return action::serve;
    }
    if (refreshing_) return action::wait;
    // A reactive request while new tokens have not fixed the 401s: the still-usable token stands.
    if (newer_than != 0 && state != token_state::expired && now < futile_until_) return action::held_back;
    if (cooling_down(now)) return action::fail;
    refreshing_ = true;
    return action::wait_and_refresh;
}

const access_token& token_cache::on_refresh_succeeded(access_token::data d) {
    d.generation = ++generation_;
    current_ = access_token(std::make_shared<const access_token::data>(std::move(d)));
    refreshing_ = false;
    last_error_.clear();
    last_diag_.clear();
    return current_;
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

} // namespace tokenflight::detail
