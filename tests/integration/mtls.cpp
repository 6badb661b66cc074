// Mutual TLS (RFC 8705) in process: servers made here that ask for client certificates and tell
// the handler which one the connection presented (http_server::options::peer_certificate_header).
// Connections are pooled per (origin, identity); a client presents its token source's
// certificate; a tls_client_auth token request presents it and carries no secret.
#include <tokenflight/client.hpp>
#include <tokenflight/http/client_identity.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/testing/http_server.hpp>
#include <tokenflight/token_source.hpp>

#include "support.hpp"
#include "tls_fixture.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using http::client_identity;

namespace {

constexpr const char* peer_header = "x-client-cert";

client_identity identity_of(const test::key_and_cert& kc, const std::string& chain = {}) {
    return client_identity::from_pem(kc.cert_pem + chain, secret(kc.key_pem)).value();
}

// A CA, an https server that wants a client certificate issued by it, and two clients' identities.
struct mtls_fixture {
    test::tls_fixture tls;
    test::key_and_cert a_cert = test::make_cert("client-a", "DNS:a.test", &tls.ca, -3600, 24 * 3600, "clientAuth");
    test::key_and_cert b_cert = test::make_cert("client-b", "DNS:b.test", &tls.ca, -3600, 24 * 3600, "clientAuth");
    client_identity a = identity_of(a_cert), b = identity_of(b_cert);

    explicit mtls_fixture(const std::string& client_ca_pem = {}) {
        tls.server_ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        tls.server_ctx.add_certificate_authority(asio::buffer(client_ca_pem.empty() ? tls.ca.cert_pem : client_ca_pem));
    }
    http::pool_options pool_options() const {
        http::pool_options o;
        o.tls = test::tls_fixture::trust(tls.ca_file.path());
        o.request_timeout = 10s;
        return o;
    }
};

// Answers every request with the thumbprint of the certificate its connection presented.
testing::http_server echo_server(mtls_fixture& f) {
    return testing::http_server(
        [](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
            res.body() = std::string(req[peer_header]);
            co_return testing::reply::send;
        },
        {.tls = &f.tls.server_ctx, .peer_certificate_header = peer_header});
}

http::request get(const http::origin& o) {
    http::request req{http::verb::get, "/whoami", 11};
    req.set(http::field::host, o.authority());
    // A client cannot claim a certificate: the server replaces this header.
    req.set(peer_header, "forged");
    return req;
}

std::tuple<error_code, http::response> send(test::io_threads& io, http::connection_pool& pool, const http::origin& o,
                                             const client_identity& id) {
    http::send_options so;
    so.identity = id;
    return test::run(io.executor(), pool.async_send(o, get(o), so, asio::as_tuple(asio::use_awaitable)));
}

} // namespace

TEST_CASE("connections are pooled per (origin, identity): each request goes out with its own certificate") {
    mtls_fixture f;
    auto server = echo_server(f);
    const http::origin o{.tls = true, .host = "localhost", .port = server.port()};
    test::io_threads io(2);
    auto po = f.pool_options();
    po.max_connections_per_origin = 3;
    http::connection_pool pool(io.executor(), po);

    // 300 requests at once, identities interleaved, over at most 3 connections each.
    constexpr int n = 300;
    // Sent from two threads at once, as the pool's lookup by (origin, identity) must bear.
    std::atomic<int> right{0}, wrong{0}, failed{0}, left{n};
    std::promise<void> all_done;
    const auto send_share = [&](int first) {
        for (int i = first; i < n; i += 2) {
            const auto& id = (i / 2) % 2 ? f.a : f.b;
            http::send_options so;
            so.identity = id;
            pool.async_send(o, get(o), so, [&, id](error_code ec, http::response res) {
                if (ec) ++failed;
                else if (res.body() == id.thumbprint()) ++right;
                else ++wrong;
                if (--left == 0) all_done.set_value();
            });
        }
    };
    std::thread t0(send_share, 0), t1(send_share, 1);
    t0.join();
    t1.join();
    REQUIRE(all_done.get_future().wait_for(60s) == std::future_status::ready);
    CHECK(failed == 0);
    CHECK(wrong == 0);
    CHECK(right == n);
    const auto st = pool.stats();
    CHECK(st.connections_opened >= 2);
    CHECK(st.connections_opened <= 6); // 3 per identity: the two sets never mix
    CHECK(server.connections_accepted() == st.connections_opened);
    CHECK(f.a.thumbprint() != f.b.thumbprint());
}

TEST_CASE("a pool's default identity goes with requests that name none; a request's own wins") {
    mtls_fixture f;
    auto server = echo_server(f);
    const http::origin o{.tls = true, .host = "localhost", .port = server.port()};
    test::io_threads io(1);
    auto po = f.pool_options();
    po.tls.identity = f.a;
    http::connection_pool pool(io.executor(), po);
    auto [ec, res] = send(io, pool, o, {});
    REQUIRE_FALSE(ec);
    CHECK(res.body() == f.a.thumbprint());
    auto [ec2, res2] = send(io, pool, o, f.b);
    REQUIRE_FALSE(ec2);
    CHECK(res2.body() == f.b.thumbprint());
    auto [ec3, res3] = send(io, pool, o, {});
    REQUIRE_FALSE(ec3);
    CHECK(res3.body() == f.a.thumbprint());
    CHECK(pool.stats().connections_opened == 2); // a's connection was reused for the third
}

TEST_CASE("the certificate chain is sent: a client certificate from an intermediate CA verifies against the root") {
    mtls_fixture f;
    const auto intermediate = test::make_cert("client intermediate CA", "", &f.tls.ca, -3600, 24 * 3600, nullptr);
    const auto leaf = test::make_cert("client-c", "DNS:c.test", &intermediate, -3600, 24 * 3600, "clientAuth");
    auto server = echo_server(f); // trusts the root only
    const http::origin o{.tls = true, .host = "localhost", .port = server.port()};
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), f.pool_options());

    const auto with_chain = identity_of(leaf, intermediate.cert_pem);
    auto [ec, res] = send(io, pool, o, with_chain);
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(res.body() == with_chain.thumbprint());
    // Without the intermediate the server cannot build the chain and refuses the handshake.
    auto [ec2, res2] = send(io, pool, o, identity_of(leaf));
    CHECK(ec2);
}

TEST_CASE("no certificate, or one the server does not trust: the request fails, nothing hangs") {
    mtls_fixture f;
    auto server = echo_server(f);
    const http::origin o{.tls = true, .host = "localhost", .port = server.port()};
    test::io_threads io(1);
    http::connection_pool pool(io.executor(), f.pool_options());
    auto [ec, res] = send(io, pool, o, {});
    CHECK(ec);
    const auto rogue_ca = test::make_cert("rogue CA", "", nullptr);
    const auto rogue = test::make_cert("client-a", "DNS:a.test", &rogue_ca, -3600, 24 * 3600, "clientAuth");
    auto [ec2, res2] = send(io, pool, o, identity_of(rogue));
    CHECK(ec2);
    // The same pool still serves a good identity.
    auto [ec3, res3] = send(io, pool, o, f.a);
    CHECK_FALSE(ec3);
    CHECK(res3.body() == f.a.thumbprint());
}

TEST_CASE("a client presents its token source's certificate; clients of two sources sharing a pool never swap them") {
    mtls_fixture f;
    testing::fake_auth_server auth;
    auto api = echo_server(f);
    test::io_threads io(2);
    const auto source_with = [&](const client_identity& id) {
        credentials c;
        c.token_url = auth.token_url();
        c.client_id = "demo-client";
        c.client_secret = secret("demo-client-secret");
        c.certificate = id;
        return std::make_unique<token_source>(io.executor(), c);
    };
    auto src_a = source_with(f.a);
    auto src_b = source_with(f.b);
    http::connection_pool shared(io.executor(), f.pool_options());
    client ca(*src_a, shared), cb(*src_b, shared);

    constexpr int per_client = 100;
    std::atomic<int> right{0}, wrong{0}, failed{0};
    auto run_client = [&](client& c, const client_identity& id) -> asio::awaitable<void> {
        for (int i = 0; i < per_client; ++i) {
            auto [ec, res] = co_await c.async_get(api.base_url() + "/whoami", asio::as_tuple(asio::use_awaitable));
            if (ec) ++failed;
            else if (res.body() == id.thumbprint()) ++right;
            else ++wrong;
        }
    };
    auto fa = asio::co_spawn(io.executor(), run_client(ca, f.a), asio::use_future);
    auto fb = asio::co_spawn(io.executor(), run_client(cb, f.b), asio::use_future);
    REQUIRE(fa.wait_for(60s) == std::future_status::ready);
    REQUIRE(fb.wait_for(60s) == std::future_status::ready);
    CHECK(failed == 0);
    CHECK(wrong == 0);
    CHECK(right == 2 * per_client);
    CHECK(shared.stats().connections_opened >= 2);
}

TEST_CASE("tls_client_auth: the token request presents the certificate and carries no secret") {
    mtls_fixture f;
    std::mutex m;
    std::string expected; // the thumbprint the token endpoint accepts
    std::vector<std::string> bodies;
    testing::http_server token_endpoint(
        [&](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
            std::lock_guard lock(m);
            bodies.push_back(req.body());
            res.set(http::field::content_type, "application/json");
            if (req[peer_header] == expected && req[http::field::authorization].empty()) {
                res.body() = R"({"access_token":"tok-mtls","token_type":"Bearer","expires_in":3600})";
            } else {
                res.result(http::status::unauthorized);
                res.body() = R"({"error":"invalid_client"})";
            }
            co_return testing::reply::send;
        },
        {.tls = &f.tls.server_ctx, .peer_certificate_header = peer_header});
    {
        std::lock_guard lock(m);
        expected = std::string(f.a.thumbprint());
    }
    test::io_threads io(1);
    const auto source_with = [&](const client_identity& id) {
        credentials c;
        c.token_url = token_endpoint.base_url() + "/token";
        c.client_id = "svc-a";
        c.auth = client_auth::tls_client_auth;
        c.certificate = id;
        token_source_options so;
        so.tls = test::tls_fixture::trust(f.tls.ca_file.path());
        so.tls.identity = id == f.a ? f.b : f.a; // the credentials' certificate wins
        return std::make_unique<token_source>(io.executor(), c, so);
    };
    auto good = source_with(f.a);
    auto [ec, t] = test::run(io.executor(), good->async_get_token(asio::as_tuple(asio::use_awaitable)));
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(t.value() == "tok-mtls");
    CHECK(good->stats().token_requests == 1);
    {
        std::lock_guard lock(m);
        REQUIRE(bodies.size() == 1);
        CHECK(bodies[0] == "grant_type=client_credentials&client_id=svc-a");
    }
    // Another client's certificate: the server's invalid_client, asked once (permanent).
    auto other = source_with(f.b);
    auto [ec2, t2] = test::run(io.executor(), other->async_get_token(asio::as_tuple(asio::use_awaitable)));
    CHECK(ec2 == oauth_errc::invalid_client);
    CHECK(other->stats().token_requests == 1);
    // Configured without a certificate: refused before anything is sent.
    credentials none;
    none.token_url = token_endpoint.base_url() + "/token";
    none.client_id = "svc-a";
    none.auth = client_auth::tls_client_auth;
    CHECK_THROWS_AS(token_source(io.executor(), none), boost::system::system_error);
}
