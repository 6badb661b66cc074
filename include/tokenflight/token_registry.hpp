#ifndef TOKENFLIGHT_TOKEN_REGISTRY_HPP
#define TOKENFLIGHT_TOKEN_REGISTRY_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

/// @file
/// One credential, several APIs: a token source per (scope, audience/resource) set.

namespace tokenflight {

/// Hands out one token_source per set of scope and extra token-request parameters (audience,
/// resource, ...), all with the same client credentials, creating each on first use. Every caller
/// asking for the same set shares one source, and so one cached token and one refresh.
///
/// Thread safety: all member functions may be called concurrently from any thread.
/// Lifetime: sources live as long as the registry; the destructor closes them.
class token_registry {
public:
    /// Makes each source's shared store (shared_store.hpp) from that source's credentials: one
    /// store per source, since a store's record holds one set's token. For example
    /// `[&](const credentials& c) { return make_redis_token_store(ex, c, redis_options); }`.
    using store_factory = std::function<std::shared_ptr<shared_token_store>(const credentials&)>;

    /// `base` holds the token URL, client id and secret; its scope and extra parameters are
    /// replaced by each set's own. `stores`, when set, gives each source its shared store;
    /// options.shared_store must be null (one store cannot serve several sources): throws
    /// std::invalid_argument otherwise.
    token_registry(boost::asio::any_io_executor ex, credentials base, token_source_options options = {},
                   store_factory stores = {});
    ~token_registry();
    token_registry(const token_registry&) = delete;
    token_registry& operator=(const token_registry&) = delete;

    /// The source for `scope` (space-separated) and `extra_params`. The scope's words are
    /// compared as a set, so "read write" and "write read" share a source; parameters are
    /// compared in order. Throws like token_source's constructor on a bad base configuration.
    token_source& source(std::string_view scope,
                         std::vector<std::pair<std::string, std::string>> extra_params = {});

    /// Number of distinct sources created so far.
    std::size_t size() const;
    /// Closes every source (waiters get operation_aborted; later requests errc::closed).
    void close();

private:
    using key = std::pair<std::vector<std::string>, std::vector<std::pair<std::string, std::string>>>;
    boost::asio::any_io_executor ex_;
    credentials base_;
    token_source_options options_;
    store_factory stores_;
    mutable std::mutex mutex_;
    std::map<key, std::unique_ptr<token_source>> sources_;
};

} // namespace tokenflight

#endif
