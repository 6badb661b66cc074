#include <tokenflight/token_source.hpp>

#include "support.hpp"
#include "tls_fixture.hpp"

#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <mutex>
#include <sstream>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr const char* recognisable_secret = "S3CRET-do-not-leak-4f9a";

testing::fake_auth_server::options server_options() {
    testing::fake_auth_server::options o;
    o.client_id = "client-1";
    o.client_secret = recognisable_secret;
    return o;
}

credentials creds_for(const testing::fake_auth_server& s, std::string secret_value = recognisable_secret) {
    credentials c;
    c.token_url = s.token_url();
    c.client_id = "client-1";
    c.client_secret = secret(secret_value);
    c.scope = "read";
    return c;
}

token_source_options fast_retries() {
    token_source_options o;
    o.backoff.initial = 10ms;
    o.backoff.max = 50ms;
    o.backoff.cooldown = 500ms;
    return o;
}

// Completion collector for callback-style calls from many threads.
struct results {
    std::mutex m;
    std::vector<std::pair<error_code, access_token>> items;
    std::atomic<int> count{0};
    auto handler() {
        return [this](error_code ec, access_token t) {
            {
                std::lock_guard l(m);
                items.emplace_back(ec, std::move(t));
            }
            ++count;
        };
    }
};

std::tuple<error_code, access_token> get(test::io_threads& io, token_source& src) {
    return test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
}

void check_no_secret(const std::string& text) {
    CHECK_MESSAGE(text.find(recognisable_secret) == std::string::npos, "secret leaked into: " << text);
}

} // namespace

TEST_CASE("a token is fetched once and then served from the cache") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    token_source src(io.executor(), creds_for(server));
    auto [ec, t] = get(io, src);
    REQUIRE_FALSE(ec);
    CHECK(t.generation() == 1);
    CHECK(t.type() == "Bearer");
    CHECK(server.check(t.value()) == testing::fake_auth_server::verdict::valid);
    auto [ec2, t2] = get(io, src);
    CHECK_FALSE(ec2);
    CHECK(t2.value() == t.value());
    CHECK(server.token_requests() == 1);
    CHECK(src.stats().token_requests == 1);
    CHECK(src.try_get_token().value() == t.value());
    std::ostringstream os;
    os << t;
    CHECK(os.str().find(std::string(t.value())) == std::string::npos); // redacted
}

TEST_CASE("the same operation works with callbacks, futures and deferred") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    token_source src(io.executor(), creds_for(server));
    std::promise<std::uint64_t> p;
    src.async_get_token([&](error_code ec, access_token t) { p.set_value(ec ? 0 : t.generation()); });
    auto f1 = p.get_future();
    REQUIRE(f1.wait_for(10s) == std::future_status::ready);
    CHECK(f1.get() == 1);

    auto f2 = src.async_get_token(asio::use_future);
    REQUIRE(f2.wait_for(10s) == std::future_status::ready);
    CHECK(f2.get().generation() == 1);

    auto op = src.async_get_token(asio::deferred);
    std::promise<bool> p3;
    std::move(op)([&](error_code ec, access_token t) { p3.set_value(!ec && t.generation() == 1); });
    auto f3 = p3.get_future();
    REQUIRE(f3.wait_for(10s) == std::future_status::ready);
    CHECK(f3.get());
    CHECK(server.token_requests() == 1);
}

TEST_CASE("stale-but-valid: callers get the cached token at once and one background refresh runs") {
    auto so = server_options();
    so.lifetime = 4s;
    testing::fake_auth_server server(so);
    test::io_threads io(2);
    token_source_options o;
    o.refresh.refresh_ahead = 2500ms; // stale from 1.5 s
    o.refresh.expiry_margin = 500ms;  // usable until 3.5 s
    token_source src(io.executor(), creds_for(server), o);
    auto [ec, first] = get(io, src);
    REQUIRE_FALSE(ec);
    std::this_thread::sleep_until(first.refresh_at() + 50ms);
    server.set_latency(1000ms); // the refresh takes a second: nobody may wait for it

    results r;
    for (int i = 0; i < 200; ++i) src.async_get_token(r.handler());
    REQUIRE(test::eventually([&] { return r.count == 200; }));
    // they completed with generation 1 while the refresh was still on its way
    for (auto& [e, t] : r.items) {
        CHECK_FALSE(e);
        CHECK(t.generation() == 1);
    }
    REQUIRE(test::eventually([&] { return src.try_get_token().generation() == 2; }));
    CHECK(server.token_requests() == 2);
    CHECK(src.stats().proactive_refreshes == 1);
}

TEST_CASE("expired: callers wait for one refresh") {
    auto so = server_options();
    so.lifetime = 1s;
    testing::fake_auth_server server(so);
    test::io_threads io(2);
    token_source src(io.executor(), creds_for(server));
    auto [ec, first] = get(io, src);
    REQUIRE_FALSE(ec);
    std::this_thread::sleep_until(first.expires_at() + 10ms);
    results r;
    for (int i = 0; i < 500; ++i) src.async_get_token(r.handler());
    REQUIRE(test::eventually([&] { return r.count == 500; }));
    for (auto& [e, t] : r.items) {
        CHECK_FALSE(e);
        CHECK(t.generation() == 2);
    }
    CHECK(server.token_requests() == 2);
}

TEST_CASE("a failed refresh completes every waiter with the same error") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(2);
    auto o = fast_retries();
    o.backoff.max_attempts = 1;
    server.set_latency(100ms);
    server.fail_next(1, 503);
    token_source src(io.executor(), creds_for(server), o);
    results r;
    for (int i = 0; i < 300; ++i) src.async_get_token(r.handler());
    REQUIRE(test::eventually([&] { return r.count == 300; }));
    for (auto& [e, t] : r.items) CHECK(e == errc::server_unavailable);
    CHECK(server.token_requests() == 1);
    CHECK(src.stats().token_failures == 1);
}

TEST_CASE("503, 503, then 200 succeeds after retries with backoff") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.fail_next(2, 503);
    std::vector<token_event::kind> events;
    std::mutex m;
    auto o = fast_retries();
    o.on_event = [&](const token_event& e) {
        std::lock_guard l(m);
        events.push_back(e.what);
    };
    token_source src(io.executor(), creds_for(server), o);
    auto [ec, t] = get(io, src);
    CHECK_FALSE(ec);
    CHECK(t.generation() == 1);
    CHECK(server.token_requests() == 3);
    CHECK(src.stats().token_failures == 0);
    std::lock_guard l(m);
    CHECK(std::count(events.begin(), events.end(), token_event::kind::attempt_failed) == 2);
    CHECK(std::count(events.begin(), events.end(), token_event::kind::token_received) == 1);
}

TEST_CASE("Retry-After on a 503 is honoured") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.fail_next(1, 503, 1);
    std::optional<clock::duration> retry_in;
    auto o = fast_retries();
    o.on_event = [&](const token_event& e) {
        if (e.what == token_event::kind::attempt_failed) retry_in = e.retry_in;
    };
    token_source src(io.executor(), creds_for(server), o);
    auto [ec, t] = get(io, src);
    CHECK_FALSE(ec);
    REQUIRE(retry_in.has_value());
    CHECK(*retry_in >= 1s);
    // as the server saw it: the second request came no sooner than Retry-After said
    const auto times = server.request_times();
    REQUIRE(times.size() == 2);
    CHECK(times[1] - times[0] >= 1s);
}

TEST_CASE("invalid_client is not retried and its description reaches the caller") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    token_source src(io.executor(), creds_for(server, "wrong-secret"), fast_retries());
    diagnostics diag;
    auto [ec, t] = test::run(io.executor(), src.async_get_token(diag, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == oauth_errc::invalid_client);
    CHECK(diag.http_status == 401);
    CHECK(diag.oauth_error == "invalid_client");
    CHECK(diag.error_description == "client authentication failed");
    CHECK(server.token_requests() == 1);
    CHECK(src.last_diagnostics().oauth_error == "invalid_client");

    // the cool-down keeps new callers off the endpoint
    for (int i = 0; i < 20; ++i) CHECK(std::get<0>(get(io, src)) == oauth_errc::invalid_client);
    CHECK(server.token_requests() == 1);
    std::this_thread::sleep_for(600ms);
    CHECK(std::get<0>(get(io, src)) == oauth_errc::invalid_client);
    CHECK(server.token_requests() == 2);
}

TEST_CASE("OAuth errors in section 5.2 form keep error and description") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.error_next(1, "invalid_scope", "scope 'admin' is not allowed");
    token_source src(io.executor(), creds_for(server), fast_retries());
    diagnostics diag;
    auto [ec, t] = test::run(io.executor(), src.async_get_token(diag, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == oauth_errc::invalid_scope);
    CHECK(diag.error_description == "scope 'admin' is not allowed");
    CHECK(server.token_requests() == 1);
}

TEST_CASE("a cancelled waiter completes with operation_aborted; the others get the token") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.set_latency(300ms);
    token_source src(io.executor(), creds_for(server));
    asio::cancellation_signal signal;
    std::promise<error_code> cancelled;
    results others;
    asio::post(io.executor(), [&] {
        src.async_get_token(asio::bind_cancellation_slot(
            signal.slot(), [&](error_code ec, access_token) { cancelled.set_value(ec); }));
        for (int i = 0; i < 10; ++i) src.async_get_token(others.handler());
    });
    // cancel while the one refresh is at the server (it answers after 300 ms)
    REQUIRE(test::eventually([&] { return server.token_requests() == 1; }));
    asio::post(io.executor(), [&] { signal.emit(asio::cancellation_type::terminal); });
    auto f = cancelled.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == asio::error::operation_aborted);
    REQUIRE(test::eventually([&] { return others.count == 10; }));
    for (auto& [e, t] : others.items) {
        CHECK_FALSE(e);
        CHECK(t.generation() == 1);
    }
    CHECK(server.token_requests() == 1);
    CHECK(src.try_get_token().generation() == 1); // the refresh's result was cached
}

TEST_CASE("closing the source aborts all waiters; later calls fail with errc::closed") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.set_latency(2000ms);
    token_source src(io.executor(), creds_for(server));
    results r;
    for (int i = 0; i < 50; ++i) src.async_get_token(r.handler());
    REQUIRE(test::eventually([&] { return server.token_requests() == 1; }));
    src.close();
    REQUIRE(test::eventually([&] { return r.count == 50; }));
    for (auto& [e, t] : r.items) CHECK(e == asio::error::operation_aborted);
    CHECK(std::get<0>(get(io, src)) == errc::closed);
}

TEST_CASE("destroying a source with waiters completes them") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.set_latency(2000ms);
    results r;
    {
        token_source src(io.executor(), creds_for(server));
        for (int i = 0; i < 5; ++i) src.async_get_token(r.handler());
        REQUIRE(test::eventually([&] { return server.token_requests() == 1; }));
    }
    REQUIRE(test::eventually([&] { return r.count == 5; }));
    for (auto& [e, t] : r.items) CHECK(e == asio::error::operation_aborted);
}

TEST_CASE("malformed token responses give clear errors and never leak the secret") {
    struct scenario {
        testing::malformation m;
        error_code expected;
    };
    const scenario scenarios[] = {
        {testing::malformation::html, errc::malformed_response},
        {testing::malformation::truncated_json, errc::malformed_response},
        {testing::malformation::no_access_token, errc::missing_access_token},
        {testing::malformation::bad_expires_in, errc::bad_expires_in},
        {testing::malformation::error_with_200, oauth_errc::invalid_request},
        {testing::malformation::huge_body, errc::body_too_large},
    };
    auto so = server_options();
    so.huge_body_size = 1024 * 1024;
    testing::fake_auth_server server(so);
    test::io_threads io(1);
    for (const auto& s : scenarios) {
        CAPTURE(static_cast<int>(s.m));
        server.malform_next(1, s.m);
        token_source src(io.executor(), creds_for(server), fast_retries());
        diagnostics diag;
        auto [ec, t] = test::run(io.executor(), src.async_get_token(diag, asio::as_tuple(asio::use_awaitable)));
        CHECK(ec == s.expected);
        CHECK_FALSE(t);
        check_no_secret(ec.message());
        check_no_secret(diag.to_string());
        check_no_secret(diag.body_excerpt);
    }
}

TEST_CASE("automatic client authentication falls back to client_secret_post once and remembers it") {
    auto so = server_options();
    so.accept_basic = false;
    so.lifetime = 1s;
    testing::fake_auth_server server(so);
    test::io_threads io(1);
    auto c = creds_for(server);
    c.auth = client_auth::automatic;
    token_source src(io.executor(), c);
    auto [ec, t] = get(io, src);
    REQUIRE_FALSE(ec);
    CHECK(server.basic_auth_requests() == 1);
    CHECK(server.post_auth_requests() == 1);
    std::this_thread::sleep_until(t.expires_at());
    auto [ec2, t2] = get(io, src);
    REQUIRE_FALSE(ec2);
    CHECK(t2.generation() == 2);
    CHECK(server.basic_auth_requests() == 1); // remembered: straight to post
    CHECK(server.post_auth_requests() == 2);
}

TEST_CASE("expires_in as a numeric string works end to end") {
    auto so = server_options();
    so.expires_in_as_string = true;
    so.lifetime = 120s;
    testing::fake_auth_server server(so);
    test::io_threads io(1);
    token_source src(io.executor(), creds_for(server));
    auto [ec, t] = get(io, src);
    REQUIRE_FALSE(ec);
    CHECK(t.expires_at() - t.issued_at() == 120s);
}

TEST_CASE("plain http to a non-loopback token URL is refused unless allowed") {
    test::io_threads io(1);
    credentials c;
    c.token_url = "http://auth.example.com/token";
    c.client_id = "id";
    c.client_secret = secret(recognisable_secret);
    try {
        token_source src(io.executor(), c);
        FAIL("expected insecure_transport");
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == errc::insecure_transport);
        check_no_secret(e.what());
    }
    c.allow_insecure_http = true;
    CHECK_NOTHROW(token_source(io.executor(), c));
    c.token_url = "not a url";
    CHECK_THROWS_AS(token_source(io.executor(), c), boost::system::system_error);
}

TEST_CASE("a token endpoint that stalls gives a timeout, not a hang") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    server.malform_next(-1, testing::malformation::stall);
    auto o = fast_retries();
    o.request_timeout = 200ms;
    o.backoff.max_attempts = 2;
    token_source src(io.executor(), creds_for(server), o);
    auto [ec, t] = get(io, src);
    CHECK(ec == errc::request_timeout);
    CHECK(server.token_requests() == 2);
}

TEST_CASE("an event hook that throws does not stop the source") {
    testing::fake_auth_server server(server_options());
    test::io_threads io(1);
    auto o = fast_retries();
    o.on_event = [](const token_event&) { throw std::runtime_error("logger failed"); };
    token_source src(io.executor(), creds_for(server), o);
    auto [ec, t] = get(io, src);
    CHECK_FALSE(ec);
    CHECK(t.generation() == 1);
}

TEST_CASE("an https token endpoint: its CA is trusted through token_source_options::tls") {
    test::tls_fixture f;
    auto so = server_options();
    so.server.tls = &f.server_ctx;
    testing::fake_auth_server server(so);
    REQUIRE(server.token_url().starts_with("https://127.0.0.1:"));
    test::io_threads io(1);

    token_source_options trusted = fast_retries();
    trusted.tls = test::tls_fixture::trust(f.ca_file.path());
    token_source good(io.executor(), creds_for(server), trusted);
    auto [ec, t] = test::run(io.executor(), good.async_get_token(asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    CHECK(server.check(t.value()) == testing::fake_auth_server::verdict::valid);
    CHECK(server.token_requests() == 1);

    // an unknown CA and a certificate for another name fail with their reason, at once (a
    // verification failure is permanent: no retry), and nothing reaches the token endpoint
    struct refused_case {
        const char* name;
        std::string san;
        bool trust_ca;
        errc expected;
    };
    const refused_case cases[] = {
        {"untrusted CA", "DNS:localhost,IP:127.0.0.1", false, errc::tls_untrusted_certificate},
        {"certificate for another host", "DNS:auth.other.test", true, errc::tls_name_mismatch},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        test::tls_fixture g(c.san);
        auto o = server_options();
        o.server.tls = &g.server_ctx;
        testing::fake_auth_server bad(o);
        token_source_options opts = fast_retries();
        opts.tls = test::tls_fixture::trust(c.trust_ca ? g.ca_file.path() : g.other_ca_file.path());
        token_source src(io.executor(), creds_for(bad), opts);
        diagnostics diag;
        auto [refused_ec, refused_token] = test::run(io.executor(), src.async_get_token(diag, asio::as_tuple(asio::use_awaitable)));
        CHECK(refused_ec == c.expected);
        CHECK(src.stats().token_requests == 1);
        CHECK(bad.token_requests() == 0);
        CHECK(diag.http_status == 0);
    }
}

// --- discovery: the token endpoint from the issuer's metadata ---

namespace {

// An issuer serving RFC 8414 metadata whose token_endpoint the test sets; 404 elsewhere.
struct metadata_server {
    std::mutex m;
    std::string token_endpoint;
    std::string path = "/.well-known/oauth-authorization-server"; // the one well-known URL served
    std::string issuer_path;                                       // after the base URL
    std::string extra;                                             // more members: ,"name":value (under m)
    testing::http_server server{[this](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        std::lock_guard l(m); // every member is set under it: the test's thread and the server's
        if (req.target() != path) {
            res.result(http::status::not_found);
            co_return testing::reply::send;
        }
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"issuer":")" + server.base_url() + issuer_path + R"(","token_endpoint":")" + token_endpoint +
                     R"(","token_endpoint_auth_methods_supported":["client_secret_basic"])" + extra + "}";
        co_return testing::reply::send;
    }};
    void point_at(std::string url) {
        std::lock_guard l(m);
        token_endpoint = std::move(url);
    }
    void serve_at(std::string well_known_path, std::string issuer_suffix) {
        std::lock_guard l(m);
        path = std::move(well_known_path);
        issuer_path = std::move(issuer_suffix);
    }
    void add_members(std::string members) {
        std::lock_guard l(m);
        extra = std::move(members);
    }
};

// One request per refresh and no cool-down: a failed refresh is over at once, and the next
// request starts another.
token_source_options failing_fast() {
    token_source_options o;
    o.backoff.max_attempts = 1;
    o.backoff.cooldown = 0s;
    return o;
}

} // namespace

TEST_CASE("discovery: a refresh that fails fetches the metadata again, and follows the endpoint that moved") {
    test::io_threads io(1);
    testing::fake_auth_server first(server_options()), second(server_options());
    metadata_server issuer;
    issuer.point_at(first.token_url());
    auto c = creds_for(first);
    c.token_url.clear();
    c.issuer = issuer.server.base_url();
    token_source src(io.executor(), c, failing_fast());

    auto [ec, t] = test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    CHECK(first.token_requests() == 1);
    CHECK(src.stats().metadata_requests == 1); // RFC 8414's URL answered

    // The endpoint moves: the old one refuses connections.
    issuer.point_at(second.token_url());
    first.server().stop();
    auto [ec2, t2] = test::run(io.executor(), src.async_get_token_after(t.generation(), asio::as_tuple(asio::use_awaitable)));
    CHECK(ec2 == condition::transient);
    CHECK(src.stats().metadata_requests == 1);
    auto [ec3, t3] = test::run(io.executor(), src.async_get_token_after(t.generation(), asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec3);
    CHECK(src.stats().metadata_requests == 2);
    CHECK(second.token_requests() == 1);
}

TEST_CASE("discovery: an issuer with a path, served only at OpenID's URL, is found at the second") {
    test::io_threads io(1);
    testing::fake_auth_server auth(server_options());
    metadata_server issuer;
    issuer.serve_at("/tenant-7/.well-known/openid-configuration", "/tenant-7");
    issuer.point_at(auth.token_url());
    auto c = creds_for(auth);
    c.token_url.clear();
    c.issuer = issuer.server.base_url() + "/tenant-7";
    token_source src(io.executor(), c);
    auto [ec, t] = test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
    REQUIRE_FALSE(ec);
    CHECK(src.stats().metadata_requests == 2); // /.well-known/oauth-authorization-server/tenant-7: 404
    CHECK(issuer.server.requests() == 2);
    CHECK(auth.token_requests() == 1);
}

TEST_CASE("discovery: automatic with a key uses the secret when the server lists only client_secret_basic") {
    test::io_threads io(1);
    testing::fake_auth_server auth(server_options()); // knows no client assertion
    metadata_server issuer;
    issuer.point_at(auth.token_url());
    auto c = creds_for(auth);
    c.token_url.clear();
    c.issuer = issuer.server.base_url();
    c.auth = client_auth::automatic;
    c.assertion.key = signing_key::generate_p256();
    token_source src(io.executor(), c);
    auto [ec, t] = test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
    CHECK_FALSE(ec);
    CHECK(auth.token_requests() == 1);
}

TEST_CASE("discovery: a server listing DPoP algorithms without the source's is key_algorithm_mismatch") {
    test::io_threads io(1);
    testing::fake_auth_server auth(server_options());
    metadata_server issuer;
    issuer.point_at(auth.token_url());
    auto c = creds_for(auth);
    c.token_url.clear();
    c.issuer = issuer.server.base_url();
    token_source_options o;
    o.dpop.enabled = true; // ES256
    for (auto [listed, expected] : {std::pair<const char*, bool>{R"(["EdDSA"])", false}, {R"(["EdDSA","ES256"])", true}}) {
        CAPTURE(listed);
        issuer.add_members(std::string(R"(,"dpop_signing_alg_values_supported":)") + listed);
        token_source src(io.executor(), c, o);
        auto [ec, t] = test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
        if (expected) {
            CHECK_FALSE(ec);
        } else {
            CHECK(ec == errc::key_algorithm_mismatch);
            CHECK(src.stats().token_requests == 0);
        }
    }
}

TEST_CASE("discovery: metadata naming a plain-http endpoint off loopback is refused before any token request") {
    test::io_threads io(1);
    testing::fake_auth_server auth(server_options());
    metadata_server issuer;
    issuer.point_at("http://auth.example/token"); // never contacted: the secret would travel in clear
    auto c = creds_for(auth);
    c.token_url.clear();
    c.issuer = issuer.server.base_url();
    token_source src(io.executor(), c);
    auto [ec, t] = test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::insecure_transport);
    CHECK(src.stats().token_requests == 0);
    CHECK(auth.token_requests() == 0);
}

TEST_CASE("discovery: an issuer that serves no metadata is bad_metadata after both well-known URLs") {
    test::io_threads io(1);
    testing::http_server nothing([](const http::request&, http::response& res) -> asio::awaitable<testing::reply> {
        res.result(http::status::not_found);
        res.body() = "<html>not here</html>";
        co_return testing::reply::send;
    });
    credentials c;
    c.issuer = nothing.base_url() + "/tenant";
    c.client_id = "client-1";
    c.client_secret = secret(recognisable_secret);
    token_source src(io.executor(), c);
    diagnostics diag;
    auto [ec, t] = test::run(io.executor(), src.async_get_token(diag, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::bad_metadata);
    CHECK(diag.http_status == 404);
    CHECK(nothing.requests() == 2);
    CHECK(src.stats().metadata_requests == 2);
    CHECK(src.stats().token_requests == 0);
}

TEST_CASE("discovery: with a token URL the issuer is not used, even after a failed refresh") {
    test::io_threads io(1);
    metadata_server issuer;
    issuer.point_at("http://127.0.0.1:1/elsewhere");
    for (std::string iss : {issuer.server.base_url(), std::string("not a URL at all")}) {
        CAPTURE(iss);
        testing::fake_auth_server auth(server_options());
        auto c = creds_for(auth); // token_url set: it wins
        c.issuer = iss;
        token_source src(io.executor(), c, failing_fast());
        auto [ec, t] = test::run(io.executor(), src.async_get_token(asio::as_tuple(asio::use_awaitable)));
        REQUIRE_FALSE(ec);
        auth.server().stop();
        for (int i = 0; i < 2; ++i) { // failed refreshes: the configured endpoint stays
            auto [ec2, t2] = test::run(io.executor(), src.async_get_token_after(t.generation(),
                                                                               asio::as_tuple(asio::use_awaitable)));
            CHECK(ec2 == condition::transient);
        }
        CHECK(src.stats().metadata_requests == 0);
        CHECK(issuer.server.requests() == 0);
    }
}

TEST_CASE("discovery: a bad issuer is refused at construction") {
    test::io_threads io(1);
    credentials c;
    c.client_id = "client-1";
    c.client_secret = secret(recognisable_secret);
    const std::pair<const char*, errc> rows[] = {{"https://as.example/?x=1", errc::invalid_url},
                                                 {"ftp://as.example", errc::unsupported_scheme},
                                                 {"http://as.example", errc::insecure_transport}};
    for (const auto& [iss, code] : rows) {
        CAPTURE(iss);
        c.issuer = iss;
        try {
            token_source src(io.executor(), c);
            FAIL("constructed");
        } catch (const boost::system::system_error& e) {
            CHECK(e.code() == code);
        }
    }
}
