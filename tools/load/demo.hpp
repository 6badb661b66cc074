// tokenflight-load's in-process servers: --demo's authorization server and API (with the token
// revocations that show one refresh serving a storm of 401s), and --demo-token-server's
// authorization server for benchmarks.
#ifndef TOKENFLIGHT_LOAD_DEMO_HPP
#define TOKENFLIGHT_LOAD_DEMO_HPP

#include "config.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token.hpp>

#include <cstdint>
#include <memory>
#include <optional>

namespace tokenflight::load {

/// --demo's servers on 127.0.0.1: tokens of the given lifetime, and an API that wants them
/// (and the x-api-key header "demo-api-key"); with `dpop`, DPoP-bound tokens (the servers do not
/// check the proofs).
struct demo_servers {
    demo_servers(std::chrono::seconds token_lifetime, bool dpop);

    testing::fake_auth_server auth;
    testing::fake_api_server api;
};

/// Starts --demo's servers and points `cfg` at them: the URL, the header the API wants, and the
/// token URL and client of `cfg.creds` (keeping --scope and --auth-method). Says so on stdout
/// unless the output is --json.
std::unique_ptr<demo_servers> start_demo(config& cfg);

/// --demo-servers: serves --demo's servers (no revocations) until SIGINT or SIGTERM, or for
/// cfg.duration when given; prints where they are first, and what they saw last. Exit status 0.
int serve_demo(const config& cfg);

/// Starts --demo-token-server's authorization server and points `creds` at it (keeping --scope
/// and --auth-method).
std::unique_ptr<testing::fake_auth_server> start_token_server(credentials& creds, bool dpop);

/// When --demo revokes every token: once half-way through the run (-d: half the duration; -n:
/// half the requests done), or every --demo-revoke-every.
class demo_revocations {
public:
    demo_revocations(demo_servers& servers, const config& cfg, clock::time_point start);

    /// Revokes every token if one is due by `now`, with `requests_done` requests done so far.
    /// Called again and again while the run goes on; revokes at most once per call.
    void tick(std::uint64_t requests_done, clock::time_point now);

private:
    demo_servers& servers_;
    std::optional<std::chrono::milliseconds> every_;
    std::optional<std::uint64_t> requests_;
    clock::time_point next_;
    std::uint64_t revocations_ = 0;
};

} // namespace tokenflight::load

#endif
