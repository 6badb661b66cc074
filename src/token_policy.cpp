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

} // namespace tokenflight
