#include "demo.hpp"

#include <cerrno>
#include <csignal>
#include <iostream>

#include <pthread.h>
#include <string>
#include <utility>

namespace tokenflight::load {

namespace {

constexpr const char* demo_api_key = "demo-api-key";

// With --dpop the tokens are DPoP-bound (token_type DPoP) and the API takes only that scheme;
// the demo servers do not check the proofs themselves (tests/integration/dpop.cpp does).
testing::fake_auth_server::options auth_options(std::chrono::seconds token_lifetime, bool dpop) {
    testing::fake_auth_server::options o;
    o.lifetime = token_lifetime;
    if (dpop) o.token_type = "DPoP";
    o.client_id = "demo-client";
    o.client_secret = "demo-client-secret";
    return o;
}

testing::fake_api_server::options api_options(bool dpop) {
    testing::fake_api_server::options o;
    if (dpop) o.auth_scheme = "DPoP";
    o.api_key = demo_api_key;
    o.threads = 2;
    // HTTP/1.1 and, for --h2c, HTTP/2 with prior knowledge on the same port; streams enough
    // for -c in the thousands on one connection.
    o.server.http2 = true;
    o.server.http2_max_concurrent_streams = 4096;
    return o;
}

// The server's client, keeping --scope and --auth-method from the command line.
void use_server_client(credentials& creds, const testing::fake_auth_server& server) {
    auto c = server.client_credentials();
    creds.token_url = std::move(c.token_url);
    creds.client_id = std::move(c.client_id);
    creds.client_secret = std::move(c.client_secret);
}

} // namespace

demo_servers::demo_servers(std::chrono::seconds token_lifetime, bool dpop)
    : auth(auth_options(token_lifetime, dpop)), api(auth, api_options(dpop)) {}

std::unique_ptr<demo_servers> start_demo(config& cfg) {
    auto demo = std::make_unique<demo_servers>(cfg.demo_token_lifetime, cfg.dpop);
    cfg.url = demo->api.url("/demo");
    cfg.targets = {url_target(cfg)};
    use_server_client(cfg.creds, demo->auth);
    cfg.headers.emplace_back("x-api-key", demo_api_key);
    if (!cfg.json) {
        const std::string revocations =
            cfg.demo_revoke_every
                ? "every " + std::to_string(cfg.demo_revoke_every->count()) + " ms"
                : std::string("half-way");
        std::cout << "demo: authorization server " << cfg.creds.token_url << ", API " << cfg.url
                  << " (" << cfg.demo_token_lifetime.count() << " s tokens, every token revoked "
                  << revocations << ")\n";
    }
    return demo;
}

int serve_demo(const config& cfg) {
    // Blocked before the servers' threads start, so that they inherit the mask and only
    // sigtimedwait below takes these signals.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    demo_servers servers(cfg.demo_token_lifetime, false);
    std::cout << "token_url=" << servers.auth.token_url() << " api_url=" << servers.api.url("/demo")
              << " client_id=demo-client" << std::endl;
    const auto wait = cfg.duration.value_or(std::chrono::hours(24 * 365));
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(wait);
    timespec limit{static_cast<time_t>(s.count()), static_cast<long>((wait - s).count() * 1'000'000)};
    while (sigtimedwait(&stop, nullptr, &limit) < 0 && errno == EINTR) {
    }
    std::cout << "token_requests=" << servers.auth.token_requests() << " api_requests=" << servers.api.requests()
              << " expired_tokens=" << servers.api.expired_token_requests() << std::endl;
    return 0;
}

std::unique_ptr<testing::fake_auth_server> start_token_server(credentials& creds, bool dpop) {
    auto server = std::make_unique<testing::fake_auth_server>(auth_options(std::chrono::hours(1), dpop));
    use_server_client(creds, *server);
    return server;
}

demo_revocations::demo_revocations(demo_servers& servers, const config& cfg,
                                   clock::time_point start)
    : servers_(servers), every_(cfg.demo_revoke_every), requests_(cfg.requests),
      next_(cfg.demo_revoke_every ? start + *cfg.demo_revoke_every
            : cfg.duration        ? start + *cfg.duration / 2
                                  : clock::time_point::max()) {}

void demo_revocations::tick(std::uint64_t requests_done, clock::time_point now) {
    // A run of -n requests revokes when half of them are done, unless told a period.
    const bool due =
        every_ || !requests_ ? now >= next_ : revocations_ == 0 && requests_done >= *requests_ / 2;
    if (!due)
        return;
    servers_.api.revoke_all();
    ++revocations_;
    next_ = every_ ? next_ + *every_ : clock::time_point::max();
}

} // namespace tokenflight::load
