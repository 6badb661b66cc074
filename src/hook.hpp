// Private to tokenflight: how every event hook (token source, client, pool) is called.
#ifndef TOKENFLIGHT_SRC_HOOK_HPP
#define TOKENFLIGHT_SRC_HOOK_HPP

#include <functional>

namespace tokenflight::detail {

/// Calls a user's event hook. Whatever it throws (a logger out of disk, a full metrics buffer) is
/// not the failure of the refresh or request that reported the event, so it is swallowed.
template <class Event>
void call_hook(const std::function<void(const Event&)>& hook, const Event& e) noexcept {
    try {
        hook(e);
    } catch (...) {
    }
}

} // namespace tokenflight::detail

#endif
