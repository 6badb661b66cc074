// tokenflight against a real, certified OAuth 2.0 server: oidc-provider from npm, started by
// tests/integration/oidc/run-with-server.sh, which passes its address in TOKENFLIGHT_OIDC_ISSUER.
#include <tokenflight/client.hpp>

#include "support.hpp"
#include "tls_certs.hpp"

#include <tokenflight/discovery.hpp>
#include <tokenflight/http/client_identity.hpp>
#include <tokenflight/signing_key.hpp>
#include <tokenflight/testing/http_server.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

std::string issuer() {
    const char* v = std::getenv("TOKENFLIGHT_OIDC_ISSUER");
    REQUIRE_MESSAGE(v != nullptr, "run through tests/integration/oidc/run-with-server.sh");
    return v;
}

std::chrono::seconds server_ttl() {
    const char* v = std::getenv("TOKENFLIGHT_OIDC_TTL");
    return std::chrono::seconds(v ? std::atoi(v) : 2);
}

credentials creds(const std::string& id, const std::string& secret_value, client_auth auth,
                  std::string scope = "read") {
    credentials c;
    c.token_url = issuer() + "/token";
    c.client_id = id;
    c.client_secret = secret(secret_value);
    c.auth = auth;
    c.scope = std::move(scope);
    return c;
}

// RFC 7662 introspection with the tf-introspect client: what the server says of a token (empty
// when the request failed).
asio::awaitable<boost::json::object> introspection(http::connection_pool& pool, std::string token) {
    auto loc = http::parse_url(issuer() + "/token/introspection").value();
    http::request req{http::verb::post, loc.target, 11};
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.set(http::field::authorization, "Basic " + base64_encode("tf-introspect:tf-introspect-secret"));
    req.body() = "token=" + form_urlencode(token);
    auto [ec, res] = co_await pool.async_send(loc.origin, std::move(req), asio::as_tuple(asio::use_awaitable));
    if (ec || res.result() != http::status::ok) co_return boost::json::object();
    co_return boost::json::parse(res.body()).as_object();
}

// Is the token active?
asio::awaitable<bool> introspect(http::connection_pool& pool, std::string token) {
    const auto info = co_await introspection(pool, std::move(token));
    const auto* active = info.if_contains("active");
    co_return active && active->is_bool() && active->get_bool();
}

std::tuple<error_code, access_token> get_token(test::io_threads& io, token_source& src, diagnostics& diag) {
    return test::run(io.executor(), src.async_get_token(diag, asio::as_tuple(asio::use_awaitable)));
}

} // namespace

TEST_CASE("oidc-provider: a token with client_secret_basic, accepted by introspection") {
    test::io_threads io(1);
    token_source src(io.executor(), creds("tf-basic", "tf-basic-secret", client_auth::basic));
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    CHECK(t.type() == "Bearer");
    CHECK(t.scope() == "read");
    CHECK(t.expires_at() - t.issued_at() == server_ttl());
    http::connection_pool pool(io.executor());
    CHECK(test::run(io.executor(), introspect(pool, std::string(t.value()))));
    CHECK_FALSE(test::run(io.executor(), introspect(pool, "not-a-token")));
}

TEST_CASE("oidc-provider: a token with client_secret_post") {
    test::io_threads io(1);
    token_source src(io.executor(), creds("tf-post", "tf-post-secret", client_auth::post, "read write"));
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    CHECK(t.scope() == "read write");
    http::connection_pool pool(io.executor());
    CHECK(test::run(io.executor(), introspect(pool, std::string(t.value()))));
}

TEST_CASE("oidc-provider: automatic client authentication finds client_secret_post") {
    test::io_threads io(1);
    token_source src(io.executor(), creds("tf-post", "tf-post-secret", client_auth::automatic));
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    CHECK_FALSE(ec);
    CHECK(src.stats().token_requests == 2); // Basic refused, then post
}

TEST_CASE("oidc-provider: a wrong secret gives invalid_client with the server's description") {
    test::io_threads io(1);
    token_source src(io.executor(), creds("tf-basic", "WRONG-oidc-secret", client_auth::basic));
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    CHECK(ec == oauth_errc::invalid_client);
    CHECK(diag.http_status == 401);
    CHECK(diag.error_description == "client authentication failed");
    CHECK(diag.to_string().find("WRONG-oidc-secret") == std::string::npos);
    CHECK(ec.message().find("WRONG-oidc-secret") == std::string::npos);
    CHECK(src.stats().token_requests == 1); // permanent: not retried
}

TEST_CASE("oidc-provider: a scope the client may not have gives invalid_scope") {
    test::io_threads io(1);
    token_source src(io.executor(), creds("tf-basic", "tf-basic-secret", client_auth::basic, "admin"));
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    CHECK(ec == oauth_errc::invalid_scope);
    CHECK(diag.http_status == 400);
    CHECK_FALSE(diag.error_description.empty());
}

TEST_CASE("oidc-provider: 10 s of concurrent requests with short-lived tokens, zero failures") {
    test::io_threads io(2);
    // The API: accepts a request when oidc-provider says its token is active.
    http::connection_pool introspection_pool(io.executor());
    std::mutex seen_mutex;
    std::set<std::string> tokens_seen;
    std::atomic<int> inactive{0}, wrong_scheme{0};
    testing::http_server api([&](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        // Exactly "Bearer <token>" on the wire: oidc-provider says token_type Bearer.
        std::string token(req[http::field::authorization]);
        if (!token.starts_with("Bearer ") || token.size() == 7) {
            ++wrong_scheme;
            res.result(http::status::bad_request);
            co_return testing::reply::send;
        }
        token.erase(0, 7);
        {
            std::lock_guard l(seen_mutex);
            tokens_seen.insert(token);
        }
        const bool active = co_await introspect(introspection_pool, token);
        if (!active) ++inactive;
        res.result(active ? http::status::ok : http::status::unauthorized);
        co_return testing::reply::send;
    });

    // oidc-provider counts in whole seconds: exp = floor(issued) + ttl, so a "2 s" token may die
    // after only 1 s. Using a token for no longer than 0.7 s after its request was sent (expiry
    // margin 1.3 s) leaves it at least 0.3 s of real life on the wire; refreshing 1.5 s ahead
    // (0.5 s after the request) renews it before that. A client of such a server has to do this.
    const auto lifetime = server_ttl();
    token_source_options so;
    so.refresh.refresh_ahead = 1500ms;
    so.refresh.expiry_margin = 1300ms;
    // Token requests in flight, as the source's events tell (they arrive one at a time, on its
    // strand): a request sent while another has not ended is two refreshes at once.
    std::atomic<bool> in_flight{false};
    std::atomic<int> overlaps{0};
    so.on_event = [&](const token_event& e) {
        if (e.what == token_event::kind::request_sent) {
            if (in_flight.exchange(true)) ++overlaps;
        } else {
            in_flight = false; // token_received, attempt_failed or refresh_failed
        }
    };
    const auto start = clock::now();
    token_source src(io.executor(), creds("tf-basic", "tf-basic-secret", client_auth::basic), so);
    tokenflight::client cl(io.executor(), src);
    const auto target = http::parse_url(api.base_url() + "/check").value();
    const auto duration = 10s;
    const auto end = clock::now() + duration;
    std::atomic<int> ok{0}, failed{0}, running{32};
    for (int w = 0; w < 32; ++w) {
        asio::co_spawn(
            io.executor(),
            [&]() -> asio::awaitable<void> {
                while (clock::now() < end) {
                    http::request req{http::verb::get, "/check", 11};
                    auto [ec, res] = co_await cl.async_send(target, std::move(req), asio::as_tuple(asio::use_awaitable));
                    if (!ec && res.result() == http::status::ok)
                        ++ok;
                    else
                        ++failed;
                }
                --running;
            },
            asio::detached);
    }
    REQUIRE(test::eventually([&] { return running == 0; }, 60s));
    const auto elapsed = clock::now() - start;
    CHECK(wrong_scheme == 0);
    CHECK(failed == 0);
    CHECK(ok > 0);
    // Proactive refresh kept the requests on active tokens. One that spent longer than the
    // 0.3 s margin on its way (a loaded machine) may still arrive inactive: it is repaired by
    // exactly one resend, never a failure.
    CHECK(src.stats().proactive_refreshes >= 1);
    CHECK(cl.stats().resends_after_401 == static_cast<std::uint64_t>(inactive.load()));
    CHECK(overlaps == 0);
    // Counts that hold at any machine speed: apart from reactive refreshes (one per inactive
    // arrival at most), a refresh starts only once the token is stale, (lifetime -
    // refresh_ahead) = 0.5 s after the previous request was sent, so at most 1 + elapsed / 0.5 s
    // fit in the run; and 10 s of requests outlive the first token.
    const auto fetched = src.stats().token_requests;
    const auto bound = 1 + static_cast<std::uint64_t>(elapsed / (lifetime - so.refresh.refresh_ahead.value())) +
                       src.stats().reactive_refreshes;
    CAPTURE(fetched);
    CAPTURE(bound);
    CHECK(fetched >= 2);
    CHECK(fetched <= bound);
    std::lock_guard l(seen_mutex);
    CHECK(tokens_seen.size() >= 2);
    CHECK(tokens_seen.size() <= fetched); // no more tokens on the wire than were fetched
}

// --- client assertions (RFC 7523): the server's private_key_jwt clients and their keys ---

namespace {

std::filesystem::path client_key_file(const char* name) {
    const char* dir = std::getenv("TOKENFLIGHT_OIDC_KEYS");
    REQUIRE_MESSAGE(dir != nullptr, "run through tests/integration/oidc/run-with-server.sh");
    return std::filesystem::path(dir) / name;
}

credentials assertion_creds(const std::string& id, const char* key_file) {
    credentials c;
    c.token_url = issuer() + "/token";
    c.client_id = id;
    c.auth = client_auth::private_key_jwt;
    c.scope = "read";
    if (key_file) c.assertion.key = signing_key::load_pem_file(client_key_file(key_file)).value();
    return c;
}

// A token, then a second one asked for as newer than the first: two assertions, two jti values
// (oidc-provider refuses a jti it has seen). Both tokens are active.
void two_tokens_active(const credentials& c) {
    test::io_threads io(1);
    token_source src(io.executor(), c);
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    CHECK(t.scope() == "read");
    auto [ec2, t2] = test::run(io.executor(), src.async_get_token_after(t.generation(), diag,
                                                                       asio::as_tuple(asio::use_awaitable)));
    REQUIRE_MESSAGE(!ec2, ec2.message() << " " << diag.to_string());
    CHECK(t2.value() != t.value());
    CHECK(src.stats().token_requests == 2);
    http::connection_pool pool(io.executor());
    CHECK(test::run(io.executor(), introspect(pool, std::string(t.value()))));
    CHECK(test::run(io.executor(), introspect(pool, std::string(t2.value()))));
}

} // namespace

TEST_CASE("oidc-provider: private_key_jwt with RS256") {
    two_tokens_active(assertion_creds("tf-pkjwt-rs", "rsa.pem"));
}

TEST_CASE("oidc-provider: private_key_jwt with PS256 (the client is registered for PS256 only)") {
    auto c = assertion_creds("tf-pkjwt-ps", "rsa.pem");
    c.assertion.alg = jws_alg::ps256;
    two_tokens_active(c);
}

TEST_CASE("oidc-provider: private_key_jwt with ES256, a kid, and the issuer as audience") {
    auto c = assertion_creds("tf-pkjwt-es", "ec.pem");
    c.assertion.kid = "tf-ec-1";
    c.assertion.audience = issuer();
    two_tokens_active(c);
}

TEST_CASE("oidc-provider: client_auth::automatic with a key is private_key_jwt") {
    auto c = assertion_creds("tf-pkjwt-es", "ec.pem");
    c.auth = client_auth::automatic;
    two_tokens_active(c);
}

TEST_CASE("oidc-provider: client_secret_jwt with HS256") {
    auto c = assertion_creds("tf-secret-jwt", nullptr);
    c.auth = client_auth::client_secret_jwt;
    c.client_secret = secret("tf-secret-jwt-secret-0123456789abcdef0123456789");
    two_tokens_active(c);
}

TEST_CASE("oidc-provider: a refused assertion is invalid_client, once, with nothing secret said") {
    struct row {
        const char* what;
        credentials c;
    };
    auto wrong_key = assertion_creds("tf-pkjwt-es", nullptr);
    wrong_key.assertion.key = signing_key::generate_p256(); // not the registered key
    auto wrong_alg = assertion_creds("tf-pkjwt-ps", "rsa.pem"); // registered for PS256 only
    wrong_alg.assertion.alg = jws_alg::rs256;
    auto wrong_kid = assertion_creds("tf-pkjwt-es", "ec.pem");
    wrong_kid.assertion.kid = "not-the-kid";
    auto wrong_aud = assertion_creds("tf-pkjwt-rs", "rsa.pem");
    wrong_aud.assertion.audience = "https://elsewhere.example/token";
    auto wrong_secret = assertion_creds("tf-secret-jwt", nullptr);
    wrong_secret.auth = client_auth::client_secret_jwt;
    wrong_secret.client_secret = secret("WRONG-jwt-secret-0123456789abcdef0123456789");
    row rows[] = {{"wrong key", wrong_key},
                  {"wrong algorithm", wrong_alg},
                  {"wrong kid", wrong_kid},
                  {"wrong audience", wrong_aud},
                  {"wrong secret", wrong_secret}};
    for (auto& r : rows) {
        CAPTURE(r.what);
        test::io_threads io(1);
        token_source src(io.executor(), r.c);
        diagnostics diag;
        auto [ec, t] = get_token(io, src, diag);
        CHECK(ec == oauth_errc::invalid_client);
        CHECK(diag.http_status == 401);
        CHECK(src.stats().token_requests == 1); // permanent: not retried
        CHECK(diag.to_string().find("WRONG-jwt-secret") == std::string::npos);
        CHECK(diag.to_string().find("PRIVATE") == std::string::npos);
    }
}

TEST_CASE("oidc-provider: tokenflight-load authenticates with --client-assertion-key") {
    std::atomic<int> bearer{0}, other{0};
    testing::http_server api([&](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        const auto auth = req[http::field::authorization];
        (auth.starts_with("Bearer ") && auth.size() > 7 ? bearer : other)++;
        res.result(auth.starts_with("Bearer ") ? http::status::ok : http::status::unauthorized);
        co_return testing::reply::send;
    });
    const auto key = client_key_file("ec.pem").string();
    const std::string cmd = std::string(TOKENFLIGHT_LOAD_EXE) + " --token-url " + issuer() +
                            "/token --client-id tf-pkjwt-es --client-assertion-key " + key +
                            " --client-assertion-kid tf-ec-1 --client-assertion-alg ES256 --scope read -n 200 -c 8 " +
                            api.base_url() + "/ > /dev/null";
    CHECK(std::system(("env -u TOKENFLIGHT_CLIENT_SECRET " + cmd).c_str()) == 0);
    CHECK(bearer == 200);
    CHECK(other == 0);
}

// --- discovery (RFC 8414 / OpenID Connect Discovery) ---

TEST_CASE("oidc-provider: discovery from the issuer finds the token endpoint") {
    test::io_threads io(1);
    auto c = creds("tf-basic", "tf-basic-secret", client_auth::basic);
    c.token_url.clear();
    c.issuer = issuer();
    token_source src(io.executor(), c);
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    // oidc-provider answers RFC 8414's URL, the first one tried.
    CHECK(src.stats().metadata_requests == 1);
    CHECK(src.stats().token_requests == 1);
    // Cached: the next refresh asks for no metadata.
    auto [ec2, t2] = test::run(io.executor(), src.async_get_token_after(t.generation(), diag,
                                                                       asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec2);
    CHECK(src.stats().metadata_requests == 1);
    CHECK(src.stats().token_requests == 2);
}

TEST_CASE("oidc-provider: discovery with automatic picks private_key_jwt for a key, the fallback for a secret") {
    auto with_key = assertion_creds("tf-pkjwt-es", "ec.pem");
    with_key.auth = client_auth::automatic;
    with_key.assertion.kid = "tf-ec-1";
    with_key.token_url.clear();
    with_key.issuer = issuer();
    two_tokens_active(with_key);

    // The server lists Basic and post: Basic is refused for tf-post, post is remembered.
    test::io_threads io(1);
    auto post = creds("tf-post", "tf-post-secret", client_auth::automatic);
    post.token_url.clear();
    post.issuer = issuer();
    token_source src(io.executor(), post);
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    CHECK(src.stats().token_requests == 2);
}

TEST_CASE("oidc-provider: an issuer the metadata does not name is issuer_mismatch, and no token is asked for") {
    test::io_threads io(1);
    auto c = creds("tf-basic", "tf-basic-secret", client_auth::basic);
    c.token_url.clear();
    c.issuer = issuer() + "/"; // the server's issuer has no trailing slash: not the same identifier
    token_source src(io.executor(), c);
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    CHECK(ec == errc::issuer_mismatch);
    CHECK(diag.error_description.find("expected '" + issuer() + "/'") != std::string::npos);
    CHECK(src.stats().token_requests == 0);
    CHECK(src.stats().metadata_requests == 1); // a mismatch ends the search
}

TEST_CASE("oidc-provider: tokenflight-load finds the token endpoint with --issuer") {
    std::atomic<int> bearer{0};
    testing::http_server api([&](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        const bool ok = req[http::field::authorization].starts_with("Bearer ");
        if (ok) ++bearer;
        res.result(ok ? http::status::ok : http::status::unauthorized);
        co_return testing::reply::send;
    });
    const std::string cmd = "TOKENFLIGHT_CLIENT_SECRET=tf-post-secret " + std::string(TOKENFLIGHT_LOAD_EXE) +
                            " --issuer " + issuer() + " --client-id tf-post --scope read -n 100 -c 4 " +
                            api.base_url() + "/ > /dev/null";
    CHECK(std::system(cmd.c_str()) == 0);
    CHECK(bearer == 100);
}

// --- DPoP (RFC 9449): oidc-provider requires a nonce on every DPoP token request ---


TEST_CASE("oidc-provider: a DPoP-bound token, with the server's nonce, bound to the source's key") {
    for (auto auth : {client_auth::basic, client_auth::private_key_jwt}) {
        CAPTURE(to_string(auth));
        test::io_threads io(1);
        auto c = auth == client_auth::basic ? creds("tf-basic", "tf-basic-secret", client_auth::basic)
                                            : assertion_creds("tf-pkjwt-rs", "rsa.pem");
        token_source_options so;
        so.dpop.enabled = true;
        so.dpop.key = signing_key::generate_p256();
        token_source src(io.executor(), c, so);
        diagnostics diag;
        auto [ec, t] = get_token(io, src, diag);
        REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
        CHECK(t.type() == "DPoP");
        // The first proof had no nonce: use_dpop_nonce, then the same request with it.
        CHECK(src.stats().token_requests == 2);
        http::connection_pool pool(io.executor());
        auto info = test::run(io.executor(), introspection(pool, std::string(t.value())));
        CHECK(info["active"] == true);
        REQUIRE(info.contains("cnf"));
        CHECK(info["cnf"].as_object()["jkt"] == so.dpop.key->jwk_thumbprint().c_str());
        // The nonce is kept: the next token costs one request (unless the server's nonce
        // rotated meanwhile, which oidc-provider does every few minutes: then two).
        auto [ec2, t2] = test::run(io.executor(), src.async_get_token_after(t.generation(), diag,
                                                                           asio::as_tuple(asio::use_awaitable)));
        REQUIRE_MESSAGE(!ec2, ec2.message() << " " << diag.to_string());
        CHECK(src.stats().token_requests <= 4);
        CHECK(src.stats().token_requests >= 3);
    }
}

TEST_CASE("oidc-provider: each source makes its own DPoP key, and its tokens are bound to it") {
    test::io_threads io(1);
    token_source_options a, b;
    a.dpop.enabled = b.dpop.enabled = true;
    token_source sa(io.executor(), creds("tf-basic", "tf-basic-secret", client_auth::basic), a);
    token_source sb(io.executor(), creds("tf-basic", "tf-basic-secret", client_auth::basic), b);
    diagnostics diag;
    auto [ea, ta] = get_token(io, sa, diag);
    auto [eb, tb] = get_token(io, sb, diag);
    REQUIRE_FALSE(ea);
    REQUIRE_FALSE(eb);
    http::connection_pool pool(io.executor());
    auto ia = test::run(io.executor(), introspection(pool, std::string(ta.value())));
    auto ib = test::run(io.executor(), introspection(pool, std::string(tb.value())));
    REQUIRE(ia.contains("cnf"));
    REQUIRE(ib.contains("cnf"));
    CHECK(ia["cnf"].as_object()["jkt"] != ib["cnf"].as_object()["jkt"]); // a default key per source
}

// --- mutual TLS (RFC 8705): the server's second listener, over HTTPS, asks for certificates ---

namespace {

// The metadata's mtls_endpoint_aliases token endpoint, and the base URL of that listener.
std::string fetch_mtls_token_endpoint() {
    test::io_threads io(1);
    http::connection_pool pool(io.executor());
    auto loc = http::parse_url(issuer() + "/.well-known/openid-configuration").value();
    http::request req{http::verb::get, loc.target, 11};
    req.set(http::field::host, loc.origin.authority());
    auto [ec, res] = test::run(io.executor(), pool.async_send(loc.origin, std::move(req), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    diagnostics diag;
    auto m = parse_server_metadata(res.result_int(), res.body(), issuer(), diag);
    REQUIRE(m.has_value());
    REQUIRE_MESSAGE(!m->mtls_token_endpoint.empty(), "run with TOKENFLIGHT_OIDC_CERTS_TOOL set (ctest does)");
    return m->mtls_token_endpoint;
}
std::string mtls_token_endpoint() {
    static const std::string endpoint = fetch_mtls_token_endpoint();
    return endpoint;
}
std::string mtls_base() {
    auto e = mtls_token_endpoint();
    return e.substr(0, e.size() - std::string_view("/token").size());
}

http::client_identity oidc_identity(const char* name) {
    const auto dir = client_key_file("").parent_path();
    return http::client_identity::load_pem_files(dir / (std::string(name) + ".pem"), dir / (std::string(name) + ".key"))
        .value();
}

// Trusts the CA of the server's HTTPS listener.
http::tls_options oidc_trust() {
    http::tls_options t;
    t.use_system_store = false;
    t.ca_file = (client_key_file("").parent_path() / "ca.pem").string();
    return t;
}

// A token source that trusts the mTLS listener's certificate.
token_source mtls_source(test::io_threads& io, const credentials& c) {
    token_source_options so;
    so.tls = oidc_trust();
    return token_source(io.executor(), c, so);
}

credentials mtls_creds(const std::string& id, client_auth auth, const char* cert) {
    credentials c;
    c.token_url = mtls_token_endpoint();
    c.client_id = id;
    c.auth = auth;
    c.scope = "read";
    c.certificate = oidc_identity(cert);
    return c;
}

// GET /api/resource of the mTLS listener through `c`: the status, and the thumbprint the resource
// server saw the token bound to.
std::pair<unsigned, std::string> resource(test::io_threads& io, client& c) {
    auto [ec, res] = test::run(io.executor(), c.async_get(mtls_base() + "/api/resource", asio::as_tuple(asio::use_awaitable)));
    REQUIRE_MESSAGE(!ec, ec.message());
    if (res.result_int() != 200) return {res.result_int(), std::string(res[http::field::www_authenticate])};
    auto body = boost::json::parse(res.body()).as_object();
    return {200, std::string(body["x5t#S256"].as_string())};
}

// A certificate-bound token: introspection shows the certificate's thumbprint as `cnf`, and the
// resource server accepts it from a client of the source (which presents that certificate).
void bound_token_works(const credentials& c) {
    test::io_threads io(1);
    auto src = mtls_source(io, c);
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    CHECK(src.stats().token_requests == 1);
    http::connection_pool pool(io.executor());
    auto info = test::run(io.executor(), introspection(pool, std::string(t.value())));
    CHECK(info["active"] == true);
    REQUIRE(info.contains("cnf"));
    CHECK(info["cnf"].as_object()["x5t#S256"] == std::string(c.certificate.thumbprint()).c_str());

    client_options co;
    co.pool.tls = oidc_trust();
    client api(io.executor(), src, co);
    auto [status, seen] = resource(io, api);
    CHECK(status == 200);
    CHECK(seen == c.certificate.thumbprint());
}

// The token sent by a pool that presents `id` (or nothing): what the resource server answers,
// as the status and the error_description of a 401.
std::pair<unsigned, std::string> resource_answer_with(test::io_threads& io, const access_token& t,
                                                      const http::client_identity& id) {
    auto po = http::pool_options();
    po.tls = oidc_trust();
    po.tls.identity = id;
    http::connection_pool pool(io.executor(), po);
    auto loc = http::parse_url(mtls_base() + "/api/resource").value();
    http::request req{http::verb::get, loc.target, 11};
    req.set(http::field::host, loc.origin.authority());
    req.set(http::field::authorization, "Bearer " + std::string(t.value()));
    auto [ec, res] = test::run(io.executor(), pool.async_send(loc.origin, std::move(req), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_MESSAGE(!ec, ec.message());
    const auto challenge = res[http::field::www_authenticate];
    const auto at = challenge.find("error_description=\"");
    std::string why;
    if (at != std::string_view::npos) {
        why = std::string(challenge.substr(at + 19));
        why = why.substr(0, why.find('"'));
    }
    return {res.result_int(), why};
}

} // namespace

TEST_CASE("oidc-provider: tls_client_auth with a CA-issued certificate; the token is bound to it") {
    bound_token_works(mtls_creds("tf-mtls", client_auth::tls_client_auth, "client"));
}

TEST_CASE("oidc-provider: self_signed_tls_client_auth with the certificate registered in the client's jwks") {
    bound_token_works(mtls_creds("tf-mtls-self", client_auth::self_signed_tls_client_auth, "self"));
}

TEST_CASE("oidc-provider: a secret authenticates, the certificate presented binds the token") {
    auto c = mtls_creds("tf-mtls-bound", client_auth::basic, "client");
    c.client_secret = secret("tf-mtls-bound-secret");
    bound_token_works(c);
}

TEST_CASE("oidc-provider: discovery with a certificate uses the mtls_endpoint_aliases token endpoint") {
    auto c = mtls_creds("tf-mtls", client_auth::automatic, "client");
    c.token_url.clear();
    c.issuer = issuer();
    test::io_threads io(1);
    auto src = mtls_source(io, c);
    diagnostics diag;
    auto [ec, t] = get_token(io, src, diag);
    // The issuer's own token endpoint is plain http, where no certificate can be presented:
    // only the alias can have given this token.
    REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
    CHECK(src.stats().metadata_requests == 1);
    CHECK(src.stats().token_requests == 1);
}

TEST_CASE("oidc-provider: a bound token is refused with another certificate or none") {
    test::io_threads io(1);
    auto src = mtls_source(io, mtls_creds("tf-mtls", client_auth::tls_client_auth, "client"));
    // A usable token for each check (the server's tokens live 2 s): refused for the certificate,
    // never for its age.
    const auto answer_with = [&](const http::client_identity& id) {
        diagnostics diag;
        auto [ec, t] = get_token(io, src, diag);
        REQUIRE_MESSAGE(!ec, ec.message() << " " << diag.to_string());
        return resource_answer_with(io, t, id);
    };
    CHECK(answer_with(oidc_identity("client")) == std::pair<unsigned, std::string>{200, ""});
    CHECK(answer_with(oidc_identity("self")) ==
          std::pair<unsigned, std::string>{401, "certificate does not match the token"});
    CHECK(answer_with({}) == std::pair<unsigned, std::string>{401, "certificate does not match the token"});
}

TEST_CASE("oidc-provider: a certificate the server does not accept is invalid_client, asked once") {
    // The right subject from an untrusted CA; then a trusted certificate for another client.
    const auto rogue_ca = test::make_cert("rogue CA", "", nullptr);
    const auto rogue = test::make_cert("tf-mtls", "DNS:tf-mtls.test", &rogue_ca, -3600, 24 * 3600, "clientAuth");
    const auto rogue_id = http::client_identity::from_pem(rogue.cert_pem, secret(rogue.key_pem)).value();
    for (const auto& [id, cert] : {std::pair{"tf-mtls", rogue_id}, std::pair{"tf-mtls-self", oidc_identity("client")}}) {
        CAPTURE(id);
        test::io_threads io(1);
        auto c = mtls_creds(id, client_auth::tls_client_auth, "client");
        c.certificate = cert;
        auto src = mtls_source(io, c);
        diagnostics diag;
        auto [ec, t] = get_token(io, src, diag);
        CHECK(ec == oauth_errc::invalid_client);
        CHECK(src.stats().token_requests == 1);
    }
}

TEST_CASE("oidc-provider: tokenflight-load with --client-cert and --client-key, against the bound resource") {
    const auto dir = client_key_file("").parent_path();
    const std::string out = (dir / "load.json").string();
    const std::string cmd = "env -u TOKENFLIGHT_CLIENT_SECRET " + std::string(TOKENFLIGHT_LOAD_EXE) +
                            " --token-url " + mtls_token_endpoint() + " --client-id tf-mtls --client-cert " +
                            (dir / "client.pem").string() + " --client-key " + (dir / "client.key").string() +
                            " --cacert " + (dir / "ca.pem").string() + " --scope read -n 100 -c 4 --json " +
                            mtls_base() + "/api/resource > " + out;
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(out);
    const auto report = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
    CAPTURE(boost::json::serialize(report));
    CHECK(report.at("requests").as_int64() == 100);
    CHECK(report.at("status").as_object().at("200").as_int64() == 100);
    CHECK(report.at("token_fetches").as_int64() >= 1);
}
