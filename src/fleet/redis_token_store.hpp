// tokenflight::shared_token_store on Redis (issue 16): the claim protocol over redis_store's
// operations. One per token source (its claims are one at a time).
#ifndef TOKENFLIGHT_FLEET_REDIS_TOKEN_STORE_HPP
#define TOKENFLIGHT_FLEET_REDIS_TOKEN_STORE_HPP

#include "fleet/redis_store.hpp"

#include <tokenflight/shared_store.hpp>

#include <boost/asio/strand.hpp>

#include <deque>
#include <memory>
#include <string>

namespace tokenflight::fleet {

/// The claim, for a source replacing token R (empty: none):
/// 1. Read the record: a token other than R, expiring later and not yet expired, is taken (the
///    source's own policy then decides when to refresh it).
/// 2. Else take the lease; taken, read once more (a publication may have ended the previous
///    lease just before) and take a token found, releasing the lease; else fetch (lease = true).
/// 3. Else someone is fetching: subscribe, read again (step 1's rule), and wait for an
///    announcement (a token, or the lease given up) or the lease's end (its PTTL); then back to
///    1, three rounds and two leases of waiting at most. After that the claim fails with
///    errc::request_timeout: the source fetches without the lease, and reports it.
/// Every Redis error ends the claim with that error: the source fetches by itself. A claim the
/// source cancels (close()) completes at once with operation_aborted; it goes on in the
/// background to its end, and gives back a lease it took for nobody.
///
/// Operations run one at a time, in the order they were started, on the store's strand: a
/// source may start its next claim (a 401 right after a refresh) while its last publication is
/// still on the wire, and one Redis connection carries one exchange at a time.
class redis_token_store final : public shared_token_store, public std::enable_shared_from_this<redis_token_store> {
public:
    redis_token_store(boost::asio::any_io_executor ex, redis::endpoint where, const credentials& creds,
                      std::string_view key_material, store_options options = {});

    void async_claim(access_token replacing,
                     boost::asio::any_completion_handler<void(error_code, shared_claim)> handler) override;
    void async_publish(tokenflight::shared_token token, boost::asio::any_completion_handler<void(error_code)> handler) override;
    void async_abandon(boost::asio::any_completion_handler<void(error_code)> handler) override;

private:
    using claim_handler = boost::asio::any_completion_handler<void(error_code, shared_claim)>;
    using done_handler = boost::asio::any_completion_handler<void(error_code)>;
    /// Queues `op` behind the operations started before it.
    void run(boost::asio::awaitable<void> op);
    boost::asio::awaitable<void> drain(std::shared_ptr<redis_token_store> self);
    struct pending_claim;
    boost::asio::awaitable<void> claim_op(access_token replacing, std::shared_ptr<pending_claim> p);
    boost::asio::awaitable<void> publish_op(tokenflight::shared_token token, done_handler h);
    boost::asio::awaitable<void> abandon_op(done_handler h);
    boost::asio::awaitable<std::tuple<error_code, shared_claim>> claim(access_token replacing);
    std::optional<tokenflight::shared_token> usable(const read_result& r, const std::string& replacing_id,
                                       std::chrono::system_clock::time_point replacing_expiry) const;

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    store_options options_;
    redis_store store_;
    std::string owner_; ///< this source's lease value: random, per store
    std::deque<boost::asio::awaitable<void>> pending_; ///< on the strand
    bool draining_ = false;                            ///< on the strand
    redis_store::subscription* waiting_ = nullptr;     ///< the claim's, while it waits (on the strand)
    bool cancelled_ = false;                           ///< the claim under way was cancelled (on the strand)
};

} // namespace tokenflight::fleet

#endif
