// DPoP (RFC 9449) end to end with in-process servers that check every proof: a token endpoint
// that demands a nonce, and an API that demands its own nonce, rotates it mid-run, and checks
// htm, htu, ath, jti and the signature of each proof with the key the test made.
#include <tokenflight/client.hpp>
#include <tokenflight/token_source.hpp>

#include "keys.hpp"
#include "support.hpp"

#include <tokenflight/testing/http_server.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/bn.h>
#include <openssl/sha.h>

#include <atomic>
#include <mutex>
#include <set>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

std::string unb64(std::string_view s) { return base64_decode(s).value_or(std::string()); }

std::string sha256_b64url(std::string_view s) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(d), sizeof d));
}

// Checks proofs as a server would, with the public key the test holds; records every failure.
class proof_checker {
public:
    explicit proof_checker(EVP_PKEY* key, std::string jwk) : key_(key), jwk_(std::move(jwk)) {}

    // Empty when the proof is right for (htm, htu, token); else what is wrong. Nonce not checked.
    std::string check(std::string_view proof, std::string_view htm, std::string_view htu, std::string_view token,
                      std::string* nonce) {
        const auto d1 = proof.find('.');
        const auto d2 = proof.rfind('.');
        if (d1 == std::string_view::npos || d1 == d2) return "not a JWS";
        json::object header, claims;
        try {
            header = json::parse(unb64(proof.substr(0, d1))).as_object();
            claims = json::parse(unb64(proof.substr(d1 + 1, d2 - d1 - 1))).as_object();
        } catch (const std::exception&) {
            return "not JSON";
        }
        if (header["typ"] != "dpop+jwt" || header["alg"] != "ES256") return "header";
        if (json::serialize(header["jwk"]) != jwk_) return "jwk";
        const auto str = [&](const char* name) {
            const auto& v = claims[name];
            return v.is_string() ? std::string(v.get_string()) : std::string("(absent)");
        };
        if (str("htm") != htm) return "htm";
        if (str("htu") != htu) return "htu";
        if (!token.empty() && str("ath") != sha256_b64url(token)) return "ath";
        if (token.empty() && claims.contains("ath")) return "ath on a token request";
        if (!claims["iat"].is_int64()) return "iat";
        const auto jti = claims["jti"].is_string() ? std::string(claims["jti"].get_string()) : std::string();
        {
            std::lock_guard l(m_);
            if (jti.empty() || !jtis_.insert(jti).second) return "jti reused";
        }
        if (!verify(proof.substr(0, d2), unb64(proof.substr(d2 + 1)))) return "signature";
        if (nonce) *nonce = claims["nonce"].is_string() ? std::string(claims["nonce"].get_string()) : std::string();
        return {};
    }

private:
    bool verify(std::string_view input, const std::string& sig) const {
        return test::verify_jws(key_, "ES256", input, sig);
    }

    EVP_PKEY* key_;
    std::string jwk_;
    std::mutex m_;
    std::set<std::string> jtis_;
};

std::string field(const http::request& req, std::string_view name) {
    auto it = req.find(boost::beast::string_view(name.data(), name.size()));
    return it == req.end() ? std::string() : std::string(it->value());
}

// The token endpoint: a proof on every request, and the nonce it hands out in the first answer.
struct dpop_token_endpoint {
    proof_checker& checker;
    std::atomic<int> requests{0}, nonce_demands{0}, bad{0}, issued{0};
    testing::http_server server{[this](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        ++requests;
        res.set(http::field::content_type, "application/json");
        std::string nonce;
        const auto wrong =
            checker.check(field(req, "DPoP"), "POST", server.base_url() + "/token", {}, &nonce);
        if (!wrong.empty()) {
            ++bad;
            res.result(http::status::bad_request);
            res.body() = R"({"error":"invalid_dpop_proof","error_description":")" + wrong + "\"}";
            co_return testing::reply::send;
        }
        if (nonce != "as-nonce-1") {
            ++nonce_demands;
            res.result(http::status::bad_request);
            res.set("DPoP-Nonce", "as-nonce-1");
            res.body() = R"({"error":"use_dpop_nonce"})";
            co_return testing::reply::send;
        }
        res.body() = R"({"access_token":"dpop-token-)" + std::to_string(++issued) +
                     R"(","token_type":"DPoP","expires_in":3600})";
        co_return testing::reply::send;
    }};
    explicit dpop_token_endpoint(proof_checker& c) : checker(c) {}
};

// The API: DPoP-bound tokens with a proof per request, its own nonce, rotated after `rotate_after`
// good answers (the new one is sent on every answer from then on).
struct dpop_api {
    proof_checker& checker;
    const int rotate_after;
    const bool http2; // the server also speaks h2c (prior knowledge)
    std::atomic<int> ok{0}, nonce_challenges{0}, bad{0};
    std::mutex m;
    std::string current = "api-nonce-1";
    testing::http_server server{[this](const http::request& req, http::response& res) -> asio::awaitable<testing::reply> {
        const std::string auth(req[http::field::authorization]);
        if (!auth.starts_with("DPoP ")) {
            ++bad;
            res.result(http::status::bad_request);
            co_return testing::reply::send;
        }
        std::string nonce;
        const std::string target(req.target());
        const auto wrong = checker.check(field(req, "DPoP"), std::string(req.method_string()),
                                         server.base_url() + target.substr(0, target.find('?')), auth.substr(5), &nonce);
        if (!wrong.empty()) {
            ++bad;
            res.result(http::status::bad_request);
            res.body() = wrong;
            co_return testing::reply::send;
        }
        std::string now;
        {
            std::lock_guard l(m);
            now = current;
        }
        res.set("DPoP-Nonce", now);
        if (nonce != now) {
            ++nonce_challenges;
            res.result(http::status::unauthorized);
            res.set(http::field::www_authenticate, R"(DPoP error="use_dpop_nonce", error_description="nonce")");
            co_return testing::reply::send;
        }
        if (++ok == rotate_after) {
            std::lock_guard l(m);
            current = "api-nonce-2";
        }
        co_return testing::reply::send;
    }, server_options()};
    dpop_api(proof_checker& c, int rotate, bool h2 = false) : checker(c), rotate_after(rotate), http2(h2) {}
    testing::http_server::options server_options() const {
        testing::http_server::options o;
        o.http2 = http2;
        return o;
    }
};

credentials creds_for(const dpop_token_endpoint& as) {
    credentials c;
    c.token_url = as.server.base_url() + "/token";
    c.client_id = "dpop-client";
    c.client_secret = secret("dpop-secret");
    return c;
}

token_source_options dpop_with(const signing_key& key) {
    token_source_options so;
    so.dpop.enabled = true;
    so.dpop.key = key;
    return so;
}

} // namespace

namespace {
// Over HTTP/1.1, or with every API request a stream of one HTTP/2 connection (h2c).
void nonce_storm(bool http2) {
    auto pkey = test::make_ec();
    const auto key = signing_key::from_pem(secret(test::pem_of(pkey.get()))).value();
    proof_checker checker(pkey.get(), key.public_jwk());
    dpop_token_endpoint as(checker);
    dpop_api api(checker, 300, http2);

    test::io_threads io(2);
    token_source source(io.executor(), creds_for(as), dpop_with(key));
    client_options co;
    if (http2) co.pool.version = http::http_version::h2c;
    client cl(io.executor(), source, co);

    const auto url = api.server.base_url() + "/v1/items";
    // The query is not in htu; a DPoP header of the caller's is not sent (the proof is the client's).
    auto prepared = cl.prepare(http::verb::get, url + "?page=2", {{"DPoP", "callers-own"}});
    REQUIRE(prepared.has_value());
    const auto target = http::parse_url(url + "?page=1").value();
    constexpr int workers = 32, per_worker = 40;
    std::atomic<int> ok{0}, failed{0}, running{workers};
    for (int w = 0; w < workers; ++w) {
        asio::co_spawn(
            io.executor(),
            [&, w]() -> asio::awaitable<void> {
                for (int i = 0; i < per_worker; ++i) {
                    unsigned status = 0;
                    error_code ec;
                    if ((w + i) % 2) {
                        auto [e, r] = co_await cl.async_send_brief(*prepared, asio::as_tuple(asio::use_awaitable));
                        ec = e;
                        status = r.status;
                    } else {
                        // The caller's own target, not the location's: htu names what is sent.
                        http::request req{http::verb::post, "/v1/other?q=1", 11};
                        req.body() = "{}";
                        auto [e, r] = co_await cl.async_send(target, std::move(req), asio::as_tuple(asio::use_awaitable));
                        ec = e;
                        status = r.result_int();
                    }
                    (!ec && status == 200 ? ok : failed)++;
                }
                --running;
            },
            asio::detached);
    }
    REQUIRE(test::eventually([&] { return running == 0; }, 60s));
    CHECK(failed == 0);
    CHECK(ok == workers * per_worker);
    CHECK(as.bad == 0);
    CHECK(api.bad == 0);
    // One nonce demand and one token at the token endpoint: two requests, whatever the API did.
    CHECK(as.nonce_demands == 1);
    CHECK(as.requests == 2);
    CHECK(source.stats().token_requests == 2);
    CHECK(source.stats().reactive_refreshes == 0);
    // Every API nonce challenge (the first requests, and those in flight when it rotated) was
    // answered by exactly one resend with the new nonce, and none by a newer token.
    CHECK(api.nonce_challenges >= 1);
    CHECK(cl.stats().dpop_nonce_resends == static_cast<std::uint64_t>(api.nonce_challenges.load()));
    CHECK(cl.stats().resends_after_401 == 0);
    if (http2) {
        CHECK(api.server.http2_connections() == 1);
        CHECK(api.server.connections_accepted() == 1);
    }
}
} // namespace

TEST_CASE("DPoP: a storm of nonce challenges causes no token request, and every proof checks out") {
    nonce_storm(false);
}

TEST_CASE("DPoP over HTTP/2: a proof per stream, the same nonce handling, on one connection") {
    nonce_storm(true);
}

TEST_CASE("DPoP: a server that challenges every proof gets one resend per request, then the 401, and no token request") {
    auto pkey = test::make_ec();
    const auto key = signing_key::from_pem(secret(test::pem_of(pkey.get()))).value();
    proof_checker checker(pkey.get(), key.public_jwk());
    dpop_token_endpoint as(checker);
    std::atomic<int> challenges{0};
    int n = 0;
    testing::http_server api([&](const http::request&, http::response& res) -> asio::awaitable<testing::reply> {
        ++challenges;
        res.result(http::status::unauthorized);
        res.set("DPoP-Nonce", "never-the-same-" + std::to_string(++n));
        res.set(http::field::www_authenticate, R"(DPoP error="use_dpop_nonce")");
        co_return testing::reply::send;
    });
    test::io_threads io(1);
    token_source source(io.executor(), creds_for(as), dpop_with(key));
    client cl(io.executor(), source);
    auto req = cl.prepare(http::verb::get, api.base_url() + "/x");
    REQUIRE(req.has_value());
    for (int i = 0; i < 5; ++i) {
        auto [ec, r] = test::run(io.executor(), cl.async_send_brief(*req, asio::as_tuple(asio::use_awaitable)));
        CHECK_FALSE(ec);
        CHECK(r.status == 401);
    }
    // Each request: its send and one resend with the nonce; the second challenge is the answer.
    // No token request beyond the first token (its nonce demand, then the token), no refresh.
    CHECK(cl.stats().dpop_nonce_resends == 5);
    CHECK(challenges == 5 * 2);
    CHECK(source.stats().token_requests == 2);
    CHECK(source.stats().reactive_refreshes == 0);
    CHECK(cl.stats().resends_after_401 == 0);
    CHECK(cl.stats().unauthorized_after_resend == 0); // no futility mark: a revocation still refreshes
}

TEST_CASE("DPoP: a DPoP token without DPoP on the source is unsupported_token_type, and nothing is sent") {
    testing::http_server token([](const http::request&, http::response& res) -> asio::awaitable<testing::reply> {
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"access_token":"t","token_type":"DPoP","expires_in":3600})";
        co_return testing::reply::send;
    }); // a DPoP token, to a source without DPoP
    std::atomic<int> api_requests{0};
    testing::http_server api([&](const http::request&, http::response&) -> asio::awaitable<testing::reply> {
        ++api_requests;
        co_return testing::reply::send;
    });
    test::io_threads io(1);
    credentials c;
    c.token_url = token.base_url() + "/token";
    c.client_id = "x";
    c.client_secret = secret("y");
    token_source source(io.executor(), c);
    client cl(io.executor(), source);
    auto req = cl.prepare(http::verb::get, api.base_url() + "/x");
    auto [ec, r] = test::run(io.executor(), cl.async_send_brief(*req, asio::as_tuple(asio::use_awaitable)));
    CHECK(ec == errc::unsupported_token_type);
    CHECK(api_requests == 0);
}

TEST_CASE("DPoP: an algorithm the key cannot sign is refused at construction") {
    test::io_threads io(1);
    credentials c;
    c.token_url = "http://127.0.0.1:1/token";
    c.client_id = "x";
    c.client_secret = secret("y");
    token_source_options so;
    so.dpop.enabled = true;
    so.dpop.alg = jws_alg::rs256; // the default key is P-256
    try {
        token_source source(io.executor(), c, so);
        FAIL("constructed");
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == errc::key_algorithm_mismatch);
    }
}
