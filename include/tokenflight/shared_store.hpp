#ifndef TOKENFLIGHT_SHARED_STORE_HPP
#define TOKENFLIGHT_SHARED_STORE_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/secret.hpp>
#include <tokenflight/token.hpp>

#include <boost/asio/any_completion_handler.hpp>

#include <chrono>
#include <optional>
#include <string>

/// @file
/// A token store shared by a fleet of processes, so that one token request serves them all.

namespace tokenflight {

/// A token as processes share it. Its expiry is absolute: processes share no steady clock.
struct shared_token {
    secret value;                                     ///< the access token
    std::string type;                                 ///< its token_type ("Bearer")
    std::string scope;                                ///< the granted scope (may be empty)
    std::chrono::system_clock::time_point expires_at; ///< when it expires
    /// When its request was sent: with expires_at, its whole lifetime, from which a process
    /// taking it computes the same refresh and expiry margins as the one that requested it.
    /// The epoch when unknown (the remaining life is then taken as the whole).
    std::chrono::system_clock::time_point issued_at{};
};

/// What a shared store answers a token source that is about to request a token.
struct shared_claim {
    /// A token another process requested, usable, and newer than the one being replaced: the
    /// source takes it and requests none.
    std::optional<shared_token> token;
    /// No token to take, and this source holds the fleet's lease: it requests the token, then
    /// hands it to async_publish() (or calls async_abandon() when the request fails). False with
    /// no token: request one anyway (the store could not help).
    bool lease = false;
};

/// The store a token source consults when its own cache cannot serve: before every token
/// request (no token yet, expired, stale, or newer than one an API rejected), never on the hot
/// path. token_source_options::shared_store takes one; tokenflight::redis (a library of its own)
/// implements it on Redis.
///
/// One store serves one source (its record holds one token). The source starts the operations
/// from its strand, in order, and may start a claim before its last publication completed (a
/// 401 just after a refresh): a store runs them in the order they were started. An operation
/// that fails (`error_code`) costs the fleet nothing but the saving: the source then requests its
/// own token, as it would without a store.
class shared_token_store {
public:
    virtual ~shared_token_store() = default;

    /// Claims a token or the lease. `replacing` is the source's token that is to be replaced
    /// (empty when it has none): a token the store offers must differ from it and expire later.
    /// May wait (for another process's request, up to the store's lease). Honours the handler's
    /// cancellation slot: cancelled (the source is closing), it completes at once with
    /// operation_aborted.
    virtual void async_claim(access_token replacing,
                             boost::asio::any_completion_handler<void(error_code, shared_claim)> handler) = 0;

    /// Shares the token this source just received (after a claim that succeeded: with the
    /// lease, or without one when the claim found nothing usable), and ends its lease.
    virtual void async_publish(shared_token token, boost::asio::any_completion_handler<void(error_code)> handler) = 0;

    /// Ends this source's lease without a token (its request failed), so that another process
    /// may try at once.
    virtual void async_abandon(boost::asio::any_completion_handler<void(error_code)> handler) = 0;
};

} // namespace tokenflight

#endif
