#ifndef TOKENFLIGHT_REDIS_TOKEN_STORE_HPP
#define TOKENFLIGHT_REDIS_TOKEN_STORE_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/secret.hpp>
#include <tokenflight/shared_store.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>
#include <string>

/// @file
/// The shared token store on Redis: library tokenflight::redis (CMake target
/// tokenflight::redis, which needs hiredis).

namespace boost::asio::ssl {
class context;
}

namespace tokenflight {

/// Where the fleet's Redis is and how the store uses it.
struct redis_store_options {
    /// redis://[[user]:password@]host[:port][/db] or rediss:// (TLS), as redis-cli takes them.
    std::string url = "redis://127.0.0.1:6379";
    /// Prefix of every key. The keys name a hash of the token URL, client id, scope and extra
    /// parameters, never a secret.
    std::string key_prefix = "tokenflight:";
    /// Each Redis step (connect, a pipeline). Redis slower than this costs the fleet its saving
    /// for that refresh, never a request: the source then requests its own token.
    std::chrono::milliseconds timeout{50};
    /// How long the fleet waits for a lease holder before another process takes over: the
    /// token request's timeout and a margin (token_source_options::request_timeout is 10 s).
    std::chrono::milliseconds lease{12'000};
    /// After a failed connection, the store answers at once with that error for this long,
    /// doubling up to `max_backoff` while Redis stays away; it rejoins on the first success.
    std::chrono::milliseconds backoff{100};
    std::chrono::milliseconds max_backoff{5'000}; ///< the longest backoff (see `backoff`)
    /// For rediss://: the TLS client context (trust store, client certificate). The server's
    /// chain and name are always verified. Required for rediss://.
    std::shared_ptr<boost::asio::ssl::context> tls;
    /// What the record's encryption key is derived from (HKDF-SHA256), 16 bytes at least.
    /// Empty: the client secret, so that every process with the credentials can read the record
    /// and Redis alone hands out no bearer token. Clients without a secret (private_key_jwt,
    /// tls_client_auth) must set it.
    secret key_material;
};

/// A store for the token source built with `creds` (one store per token source), to set as
/// token_source_options::shared_store. Connects on first use. Throws boost::system::system_error:
/// errc::invalid_url or errc::unsupported_scheme for the URL (naming no password),
/// errc::missing_credentials without 16 bytes of key material.
std::shared_ptr<shared_token_store> make_redis_token_store(boost::asio::any_io_executor ex, const credentials& creds,
                                                           redis_store_options options = {});

} // namespace tokenflight

#endif
