#ifndef TOKENFLIGHT_TESTING_FAKE_API_SERVER_HPP
#define TOKENFLIGHT_TESTING_FAKE_API_SERVER_HPP

#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

/// @file
/// An in-process API protected by fake_auth_server's tokens.

namespace tokenflight::testing {

/// Answers every request on 127.0.0.1 with 200 `{"ok":true}` when it carries a token that the
/// given fake_auth_server issued and that is neither revoked nor expired (`Authorization: Bearer
/// <token>` or the raw token, as the provider guide sends it); 401 with a `WWW-Authenticate:
/// Bearer error="invalid_token"` challenge otherwise; 403 when an API key is required and missing.
///
/// Thread safety: every member function is thread-safe.
class fake_api_server {
public:
    /// What the API demands and how it runs.
    struct options {
        std::string api_key;                                    ///< required in x-api-key when set
        std::vector<std::pair<std::string, std::string>> expected_headers; ///< counted when missing
        std::chrono::milliseconds latency{0}; ///< every request waits this long for its answer
        /// When set, only `Authorization: <scheme> <token>` exactly (the raw token when empty) is
        /// accepted; anything else is answered 401 `invalid_request`. Unset: `Bearer <token>` in
        /// any case or the raw token.
        std::optional<std::string> auth_scheme;
        /// Serve `POST /__control/revoke` (revoke every token, 204): lets a benchmark in another
        /// process trigger a revocation. Off by default.
        bool control_endpoint = false;
        /// Reset this fraction of requests' connections (RST, no answer), at random.
        double reset_probability = 0.0;
        int threads = 1; ///< threads serving requests (overrides `server.threads`)
        http_server::options server; ///< the underlying server's other options (TLS, limits)
    };

    /// With default options(): starts serving at once. `auth` must outlive the API server.
    explicit fake_api_server(fake_auth_server& auth);
    /// Starts serving at once the tokens of `auth`, which must outlive the API server.
    fake_api_server(fake_auth_server& auth, options opts);
    ~fake_api_server();

    /// "http://127.0.0.1:PORT" + path
    std::string url(std::string_view path = "/") const;
    /// The underlying server, for its connection counters.
    http_server& server() noexcept;

    /// Revokes every token the authorization server issued so far.
    void revoke_all();
    /// Changes options::reset_probability while requests run.
    void set_reset_probability(double p);
    /// Connections reset on purpose so far.
    std::uint64_t resets() const noexcept;

    /// API requests received (the control endpoint's excepted), whatever the answer.
    std::uint64_t requests() const noexcept;
    /// Responses sent with `status` so far (0 for a status above 599).
    std::uint64_t count_status(unsigned status) const noexcept;
    /// Requests whose token had expired (the client should have refreshed it in time).
    std::uint64_t expired_token_requests() const noexcept;
    /// Requests that lacked one of options::expected_headers (or had another value).
    std::uint64_t requests_missing_headers() const noexcept;
    /// Requests per token value.
    std::map<std::string, std::uint64_t> requests_by_token() const;
    /// Bodies of the last requests, for tests that check a resend kept its body (at most 16).
    std::vector<std::string> recent_bodies() const;
    /// The Authorization header of the last requests exactly as received, in order (at most 16).
    std::vector<std::string> recent_authorizations() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace tokenflight::testing

#endif
