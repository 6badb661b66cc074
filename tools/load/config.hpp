// tokenflight-load's command line: parsed without I/O (the environment is passed in), so every
// usage error is unit-tested.
#ifndef TOKENFLIGHT_LOAD_CONFIG_HPP
#define TOKENFLIGHT_LOAD_CONFIG_HPP

#include "schedule.hpp"
#include "targets.hpp"

#include <tokenflight/credentials.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/http/message.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tokenflight::load {

struct config {
    std::string url;                 ///< the API URL under load (empty with --demo)
    credentials creds;               ///< token URL, client id, secret, scope, auth method
    std::optional<std::string> auth_scheme; ///< unset: token_type; "" (from "none"): raw token
    std::vector<std::pair<std::string, std::string>> headers;
    http::verb method = http::verb::get;
    std::string body;
    std::vector<target> targets;     ///< what the run sends: --targets FILE (--weights applied), or url_target()
    int concurrency = 64;
    std::optional<std::uint64_t> requests;               ///< -n
    std::optional<std::chrono::milliseconds> duration;   ///< -d
    int threads = 1;                                     ///< -t: event loops, one thread each
    std::optional<rate_schedule> rate;                   ///< -R: the arrival schedule (whole run)
    std::optional<int> max_connections;                  ///< whole run, split over loops; default: concurrency (HTTP/2: one per loop)
    http::http_version http_version = http::http_version::http1; ///< --http2, --h2c
    std::chrono::milliseconds timeout{10'000};
    std::string cacert;
    bool insecure = false;
    bool json = false;
    std::string timeline_file;      ///< --timeline FILE.csv: the per-second rows ("": none)
    std::string report_file;        ///< --report FILE.html ("": none)
    bool demo = false;
    bool demo_servers = false;      ///< --demo-servers: only --demo's servers, for other processes
    std::chrono::seconds demo_token_lifetime{2};          ///< --demo: token lifetime
    std::optional<std::chrono::milliseconds> demo_revoke_every; ///< --demo: revoke periodically (default: once, half-way)
    bool demo_token_server = false; ///< benchmarks: tokens from an in-process fake server, load on URL
    bool no_token = false;          ///< benchmarks: no token layer at all (send -H headers only)
    bool dpop = false;              ///< DPoP proofs on token and API requests (RFC 9449)
    std::optional<std::string> proxy; ///< --proxy URL for every connection; unset: the environment
    /// --redis URL (or TOKENFLIGHT_REDIS_URL): one token for every worker sharing the Redis
    std::string redis_url;
    std::chrono::milliseconds redis_timeout{50};         ///< --redis-timeout: each Redis step
    std::optional<std::chrono::milliseconds> redis_lease; ///< --redis-lease; default --timeout + 2 s
    std::string run_id;             ///< --run ID: this worker's run (with --workers)
    int workers = 0;                ///< --workers N: the run's size
    std::string collect_id;         ///< --collect ID: merge the run's results instead of loading
    std::chrono::seconds run_wait{600}; ///< --run-wait: the longest wait for the others (or the results)
    secret redis_key;               ///< --redis-key-file's: the record key's material (default: the secret)
    bool help = false;
};

/// The one request the URL, -X and --data make: the run's target without --targets.
target url_target(const config& cfg);

/// A usage error: the one-line message tokenflight-load prints before exiting with status 2.
struct usage_error {
    std::string message;
};

/// Parses argv (without the program name). `getenv` looks up TOKENFLIGHT_CLIENT_ID,
/// TOKENFLIGHT_CLIENT_SECRET, TOKENFLIGHT_TOKEN_URL and TOKENFLIGHT_SCOPE. Reads the secret file
/// when one is named. No message ever contains a secret.
std::variant<config, usage_error> parse_command_line(const std::vector<std::string_view>& args,
                                                     const std::function<const char*(const char*)>& getenv,
                                                     unsigned hardware_threads);

/// The --help text.
std::string usage();

} // namespace tokenflight::load

#endif
