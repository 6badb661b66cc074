#include "refresh_fsm.hpp"

#include <boost/asio/error.hpp>

#include <algorithm>

namespace tokenflight::detail {

refresh_fsm::refresh_fsm(const backoff_policy& backoff, clock::duration request_timeout, client_auth configured,
                         client_auth preferred, double (*unit_random)()) noexcept
    : backoff_(backoff), request_timeout_(request_timeout), configured_(configured), unit_random_(unit_random),
      method_(configured != client_auth::automatic ? configured
              : preferred == client_auth::post   ? client_auth::post
                                                 : client_auth::basic) {}

refresh_action refresh_fsm::resume(const refresh_event& e) {
    const bool cancelled = e.cancelled != boost::asio::cancellation_type::none;
    switch (state_) {
    case state::initial:
        deadline_ = e.now + backoff_.deadline;
        if (cancelled) return finish(boost::asio::error::operation_aborted);
        return send(e.now);

    case state::sending: {
        if (!e.ec) return finish({}); // a token, whatever else happened meanwhile
        if (cancelled) return finish(boost::asio::error::operation_aborted);
        // RFC 9449 section 8: the server wants its nonce in the proof, and sent it with this
        // answer. Resent at once, not counted as a failure; a second demand in a row is one.
        if (e.ec == oauth_errc::use_dpop_nonce && !nonce_resent_) {
            nonce_resent_ = true;
            return send(e.now);
        }
        nonce_resent_ = false;
        // RFC 6749 allows either method; some servers take only one. Switched once, at once.
        if (e.ec == oauth_errc::invalid_client && configured_ == client_auth::automatic &&
            method_ == client_auth::basic && !switched_) {
            method_ = client_auth::post;
            switched_ = true;
            return send(e.now);
        }
        ++failures_;
        if (!is_transient(e.ec) || failures_ >= backoff_.max_attempts) return finish(e.ec);
        const auto delay = backoff_.delay(failures_, unit_random_(), e.retry_after);
        if (e.now + delay >= deadline_) return finish(e.ec);
        state_ = state::waiting;
        refresh_action a;
        a.what = refresh_action::kind::wait;
        a.attempt = attempt_;
        a.delay = delay;
        a.ec = e.ec;
        return a;
    }

    case state::waiting:
        if (cancelled || e.ec) return finish(boost::asio::error::operation_aborted);
        return send(e.now);

    case state::done: break;
    }
    return finish(result_);
}

refresh_action refresh_fsm::send(clock::time_point now) {
    state_ = state::sending;
    refresh_action a;
    a.what = refresh_action::kind::send;
    a.attempt = ++attempt_;
    a.method = method_;
    a.timeout = std::max<clock::duration>(std::chrono::milliseconds(1), std::min(request_timeout_, deadline_ - now));
    return a;
}

refresh_action refresh_fsm::finish(error_code ec) {
    state_ = state::done;
    result_ = ec;
    refresh_action a;
    a.what = refresh_action::kind::done;
    a.attempt = attempt_;
    a.ec = ec;
    return a;
}

} // namespace tokenflight::detail
