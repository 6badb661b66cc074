// The shared token store's operations on Redis (issue 16): read the sealed record, take and
// release the lease, write and announce a new token, wait for another process's announcement.
// The token source's use of them (when to read, who fetches) comes on top; this layer knows
// Redis, the record and the lease, nothing of refresh policy.
#ifndef TOKENFLIGHT_FLEET_REDIS_STORE_HPP
#define TOKENFLIGHT_FLEET_REDIS_STORE_HPP

#include "fleet/record.hpp"
#include "redis/connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace tokenflight::fleet {

struct store_options {
    std::string prefix = "tokenflight:";                ///< of every key
    std::chrono::milliseconds timeout{50};              ///< each Redis step
    std::chrono::milliseconds lease{12'000};            ///< a token request's timeout and a margin
    std::shared_ptr<boost::asio::ssl::context> tls{};   ///< for rediss:// (redis::connection_options::tls)
    /// After a failed connect, calls fail at once with that error for this long, doubling up
    /// to `max_backoff` while Redis stays away; the first success resets it.
    std::chrono::milliseconds backoff{100};
    std::chrono::milliseconds max_backoff{5'000};
};

/// What read() found.
struct read_result {
    std::optional<shared_token> token; ///< a record that opened
    bool unreadable = false;           ///< a record was there but did not open (ignored)
};

/// One process's view of the store for one set of credentials. Not thread-safe: one coroutine
/// at a time (the token source runs its refreshes one at a time). Every call connects first if
/// need be; while Redis is away, calls fail fast (see store_options::backoff), so that requests
/// fall back to the process's own single flight, and the store rejoins when Redis is back.
class redis_store {
public:
    /// `key_material`: what the record key is derived from (the client secret by default), 16
    /// bytes at least. Throws boost::system::system_error: errc::missing_credentials for less
    /// material, errc::invalid_url for a prefix with a brace (it would break the hash tag).
    redis_store(boost::asio::any_io_executor ex, redis::endpoint where, const credentials& creds,
                std::string_view key_material, store_options options = {});

    const store_keys& keys() const noexcept { return keys_; }
    /// Connections attempted so far (each after the backoff, while Redis is away).
    std::uint64_t connect_attempts() const noexcept { return connect_attempts_; }

    /// The record, if there is one that opens.
    boost::asio::awaitable<boost::system::result<read_result>> read();

    /// Takes the lease for `owner` (SET NX PX lease): true when this process now holds it.
    boost::asio::awaitable<boost::system::result<bool>> acquire(std::string_view owner);

    /// If the lease is `owner`'s, or nobody's and no record expiring later is there: writes
    /// `token` (expiring in Redis when the token does), ends the lease and announces the token's
    /// id, atomically (one Lua script). False otherwise: a slow holder never overwrites its
    /// successor. errc::body_too_large for a token too large to share (fits_in_record).
    boost::asio::awaitable<boost::system::result<bool>> publish(const shared_token& token, std::string_view owner);

    /// Releases the lease if `owner` still holds it (compare and delete, in Lua: a holder whose
    /// lease expired never deletes its successor's), and announces an empty id, so that the
    /// processes waiting for the lease try at once. True when it was `owner`'s.
    boost::asio::awaitable<boost::system::result<bool>> release(std::string_view owner);

    /// How long the lease has left (PTTL); nullopt when nobody holds it.
    boost::asio::awaitable<boost::system::result<std::optional<std::chrono::milliseconds>>> lease_left();

    /// Announcements of new tokens, on a connection of its own.
    class subscription {
    public:
        /// The next announced token id ("" for a lease released without a token), or nullopt
        /// when `deadline` came first (the subscription is then over).
        boost::asio::awaitable<boost::system::result<std::optional<std::string>>>
        next(std::chrono::steady_clock::time_point deadline);
        /// Ends the subscription: a next() under way completes with an error. From the
        /// store's executor only.
        void close() noexcept { conn_->close(); }

    private:
        friend class redis_store;
        explicit subscription(std::unique_ptr<redis::connection> c) : conn_(std::move(c)) {}
        std::unique_ptr<redis::connection> conn_;
    };

    /// Subscribes to the channel. Subscribe first, then read(), then wait: an announcement made
    /// between the read and the wait is not missed.
    boost::asio::awaitable<boost::system::result<std::unique_ptr<subscription>>> subscribe();

private:
    boost::asio::awaitable<error_code> connect_gated(redis::connection& c);
    boost::asio::awaitable<error_code> ensure_connected();
    /// Sends a pipeline that may be sent twice, again once on a fresh connection if the open one
    /// turns out closed.
    boost::asio::awaitable<boost::system::result<std::vector<redis::reply>>> exec_idempotent(const redis::pipeline& p);

    boost::asio::any_io_executor ex_;
    redis::endpoint where_;
    store_options options_;
    store_keys keys_;
    record_key key_;
    redis::connection conn_;
    std::uint64_t connect_attempts_ = 0;
    std::chrono::milliseconds backoff_{0};
    std::chrono::steady_clock::time_point retry_at_{};
    error_code last_connect_error_;
};

} // namespace tokenflight::fleet

#endif
