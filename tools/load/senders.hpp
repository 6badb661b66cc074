// What sends tokenflight-load's requests on each event loop: a tokenflight::client per loop, all
// sharing one token source, or (--no-token) a bare connection pool per loop.
#ifndef TOKENFLIGHT_LOAD_SENDERS_HPP
#define TOKENFLIGHT_LOAD_SENDERS_HPP

#include "config.hpp"
#include "event_loops.hpp"
#include "runner.hpp"
#include "timeline.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/token_registry.hpp>
#include <tokenflight/token_source.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace tokenflight::load {

/// The run's senders. Each loop's send function calls into that loop's clients or pool, on that
/// loop's executor; the token sources run on loop 0's. Destroy the senders before the loops.
struct senders {
    struct per_loop {
        std::unique_ptr<http::connection_pool> pool;
        /// On `pool`, one per token source (as `sources`); none with --no-token.
        std::vector<std::unique_ptr<tokenflight::client>> clients;
        send_function send;
    };

    /// The token layer's events with their times, for the report (shared with the event hooks).
    std::shared_ptr<token_story> story = std::make_shared<token_story>();
    std::unique_ptr<token_registry> registry; ///< null with --no-token
    std::vector<token_source*> sources;       ///< the registry's: one per scope the targets use
    std::vector<per_loop> loops;              ///< one for each event loop, in order

    /// Requests sent to the token endpoint so far.
    std::uint64_t token_fetches() const;
    /// Requests sent again with a new token after a 401, over every loop's client.
    std::uint64_t resends_after_401() const;
    /// The run's counters now: `t`'s, and the token source's, clients' and pools' own.
    run_counters sample(const tally& t) const;
};

/// Why tokenflight-load cannot start: the one line it prints before exiting with status 2.
struct setup_error {
    std::string message;
};

/// Builds a sender for every loop of `loops`: each loop's share of --max-connections, the request
/// prepared once per loop (with the token layer: the Authorization line is rebuilt only when the
/// token changes).
///
/// With the token layer, a token registry gets `creds`: one token source for --scope, and one
/// more for each other `# tokenflight-scope:` of the targets, every loop having one client per
/// source on its pool. This waits for each source's first token (up to --timeout and two seconds
/// each) before any load: a run against refused credentials would only measure errors. Fails
/// with a message naming the cause (never a secret).
std::variant<senders, setup_error> make_senders(const config& cfg, credentials creds,
                                                event_loops& loops);

} // namespace tokenflight::load

#endif
