#ifndef TOKENFLIGHT_TESTING_FAKE_AUTH_SERVER_HPP
#define TOKENFLIGHT_TESTING_FAKE_AUTH_SERVER_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

/// @file
/// An in-process OAuth 2.0 authorization server (client-credentials grant only) with knobs for
/// latency, failures and malformed answers, and a token registry an API server can check.

namespace tokenflight::testing {

/// What the token endpoint sends instead of a good token.
enum class malformation {
    none,
    html,               ///< 200 with an HTML page
    truncated_json,     ///< 200 with JSON cut in half
    no_access_token,    ///< 200 with a JSON object without access_token
    bad_expires_in,     ///< 200 with "expires_in": "abc"
    huge_body,          ///< 200 with a body of options::huge_body_size bytes
    error_with_200,     ///< 200 with {"error":"invalid_request",...}
    reset_mid_body,     ///< header and half a body, then a TCP reset
    close_before_headers, ///< close the connection without answering
    stall,              ///< never answer
    echo_request,       ///< 400 whose error_description and body repeat the request (and so the secret)
};

/// A client-credentials token endpoint at `POST /token` on 127.0.0.1.
///
/// Accepts `client_secret_basic` and `client_secret_post` (each can be switched off), checks the
/// client id and secret, issues opaque tokens with `expires_in`, and remembers them so that a
/// fake_api_server can accept exactly the tokens it issued and has not revoked or seen expire.
///
/// Thread safety: every member function is thread-safe and may be called while requests run.
class fake_auth_server {
public:
    /// The server's client, its tokens and how it runs.
    struct options {
        std::string client_id = "demo-client";     ///< the one client id accepted
        std::string client_secret = "demo-client-secret"; ///< that client's secret
        std::chrono::seconds lifetime{3600};       ///< lifetime of the tokens issued (`expires_in`)
        std::string token_type = "Bearer";         ///< `token_type` of the tokens issued
        bool accept_basic = true; ///< accept `client_secret_basic`
        bool accept_post = true;  ///< accept `client_secret_post`
        bool expires_in_as_string = false; ///< send "3599" as Azure AD v1 does
        bool omit_expires_in = false; ///< send no `expires_in` at all
        std::size_t huge_body_size = 10 * 1024 * 1024; ///< body size of malformation::huge_body
        /// Scopes a client may ask for; empty accepts any.
        std::vector<std::string> allowed_scopes;
        int threads = 1; ///< threads serving requests (overrides `server.threads`)
        http_server::options server; ///< the underlying server's other options (TLS, limits)
    };

    /// What check() says of a token.
    enum class verdict { valid, unknown, expired, revoked };

    /// With default options(): starts serving at once.
    fake_auth_server();
    /// Starts serving at once; port() is known when the constructor returns.
    explicit fake_auth_server(options opts);
    ~fake_auth_server();

    /// "http://127.0.0.1:PORT/token"
    std::string token_url() const;
    /// Credentials this server accepts: its token URL, client id and secret (Basic auth).
    tokenflight::credentials client_credentials() const;
    /// The port the server listens on.
    std::uint16_t port() const noexcept;
    /// The underlying server, for its connection and request counters.
    http_server& server() noexcept;

    // --- knobs -------------------------------------------------------------------------------
    /// Every token request waits this long before it is answered (0: no wait).
    void set_latency(std::chrono::milliseconds latency);
    /// Lifetime of the tokens issued from now on.
    void set_lifetime(std::chrono::seconds lifetime);
    /// The next `count` token requests answer `status` (with Retry-After when given).
    void fail_next(int count, unsigned status, std::optional<int> retry_after_seconds = std::nullopt);
    /// The next `count` token requests answer an RFC 6749 section 5.2 error.
    void error_next(int count, std::string error, std::string description, unsigned status = 400);
    /// The next `count` token requests (or all, with -1) are malformed as given.
    void malform_next(int count, malformation m);

    // --- counters ----------------------------------------------------------------------------
    /// Token requests received (every POST /token, whatever the answer).
    std::uint64_t token_requests() const noexcept;
    /// Tokens issued.
    std::uint64_t tokens_issued() const noexcept;
    /// Requests that tried HTTP Basic authentication, accepted or not.
    std::uint64_t basic_auth_requests() const noexcept;
    /// Requests that tried the secret in the post body, accepted or not.
    std::uint64_t post_auth_requests() const noexcept;
    /// The most token requests the server was answering at the same time (the single-flight
    /// invariant: 1 for one token source, however many callers).
    std::uint64_t max_concurrent_requests() const noexcept;
    /// When each token request arrived, in order (at most the last 1,024).
    std::vector<std::chrono::steady_clock::time_point> request_times() const;
    /// The form parameters of each token request, in order (at most the last 64), without
    /// `client_secret`.
    std::vector<std::map<std::string, std::string>> request_forms() const;

    // --- registry ----------------------------------------------------------------------------
    /// Whether `token` was issued here and is still good: what an API server asks.
    verdict check(std::string_view token) const;
    /// Every token issued so far becomes invalid.
    void revoke_all();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace tokenflight::testing

#endif
