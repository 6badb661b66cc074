// DPoP proofs (RFC 9449 section 4.2), checked with OpenSSL against the key the test made, and
// the per-origin nonce store.
#include <tokenflight/dpop.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <doctest/doctest.h>

#include "keys.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/bn.h>
#include <openssl/sha.h>

using namespace tokenflight;
namespace json = boost::json;

namespace {

std::string unb64(std::string_view s) {
    auto d = base64_decode(s);
    REQUIRE(d.has_value());
    return *d;
}

// Verifies an ES256 JWS with the test's own key.
bool verify_es256(EVP_PKEY* k, std::string_view jwt) {
    const auto dot = jwt.rfind('.');
    return test::verify_jws(k, "ES256", jwt.substr(0, dot), unb64(jwt.substr(dot + 1)));
}

json::object part(std::string_view jwt, int index) {
    std::size_t begin = 0;
    for (int i = 0; i < index; ++i) begin = jwt.find('.', begin) + 1;
    const auto end = jwt.find('.', begin);
    return json::parse(unb64(jwt.substr(begin, end - begin))).as_object();
}

const auto wall_now = std::chrono::system_clock::from_time_t(1'800'000'000);

} // namespace

TEST_CASE("a DPoP proof: header with the public key, the request's claims, ath and nonce") {
    auto ec = test::make_ec();
    const auto key = signing_key::from_pem(secret(test::pem_of(ec.get()))).value();
    const dpop_prover prover(key);
    CHECK(prover.alg() == jws_alg::es256);
    CHECK(prover.jkt() == key.jwk_thumbprint());

    const auto proof = prover.proof("GET", "https://api.example/v1/items", wall_now, "j-1", "n-7", "tok.en").value();
    CHECK(verify_es256(ec.get(), proof));
    const auto header = part(proof, 0);
    CHECK(header.at("typ").as_string() == "dpop+jwt");
    CHECK(header.at("alg").as_string() == "ES256");
    CHECK(json::serialize(header.at("jwk")) == key.public_jwk());
    CHECK_FALSE(header.at("jwk").as_object().contains("d"));
    const auto claims = part(proof, 1);
    CHECK(claims.at("jti").as_string() == "j-1");
    CHECK(claims.at("htm").as_string() == "GET");
    CHECK(claims.at("htu").as_string() == "https://api.example/v1/items");
    CHECK(claims.at("iat").as_int64() == 1'800'000'000);
    CHECK(claims.at("nonce").as_string() == "n-7");
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>("tok.en"), 6, digest);
    CHECK(claims.at("ath").as_string() ==
          base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest)));

    // A token request's proof: no ath, and no nonce until the server gave one.
    const auto bare = part(prover.proof("POST", "https://as.example/token", wall_now, "j-2").value(), 1);
    CHECK_FALSE(bare.contains("ath"));
    CHECK_FALSE(bare.contains("nonce"));
}

TEST_CASE("DPoP with an RSA key signs RS256 or PS256; a key that cannot sign the algorithm fails each proof") {
    const auto rsa = signing_key::from_pem(secret(test::pem_of(test::make_rsa().get()))).value();
    CHECK(dpop_prover(rsa).alg() == jws_alg::rs256);
    const dpop_prover ps(rsa, jws_alg::ps256);
    CHECK(part(ps.proof("GET", "https://a.example/", wall_now, "j").value(), 0).at("alg").as_string() == "PS256");
    const dpop_prover wrong(signing_key::generate_p256(), jws_alg::rs256);
    CHECK(wrong.proof("GET", "https://a.example/", wall_now, "j").error() == errc::key_algorithm_mismatch);
}

TEST_CASE("htu: scheme, authority and path; no query or fragment; default ports omitted") {
    CHECK(dpop_htu({true, "api.example", 443}, "/v1/items?page=2#top") == "https://api.example/v1/items");
    CHECK(dpop_htu({true, "api.example", 8443}, "/v1") == "https://api.example:8443/v1");
    CHECK(dpop_htu({false, "127.0.0.1", 80}, "/#frag") == "http://127.0.0.1/");
    CHECK(dpop_htu({false, "::1", 8080}, "/x?y") == "http://[::1]:8080/x");
}

TEST_CASE("nonces: one per origin, the latest kept, anything that is not a nonce ignored") {
    dpop_nonces n;
    const http::origin a{true, "a.example", 443}, b{true, "b.example", 443};
    CHECK(n.get(a).empty());
    CHECK(n.update(a, "n1"));
    CHECK_FALSE(n.update(a, "n1")); // the same: no news
    CHECK(n.update(b, "m1"));
    CHECK(n.update(a, "n2"));
    CHECK(n.get(a) == "n2");
    CHECK(n.get(b) == "m1");
    // A nonce goes into a JSON string and a header: RFC 9449's NQCHAR only.
    for (std::string_view bad : {std::string_view(""), std::string_view("has space"), std::string_view("quo\"te"),
                                 std::string_view("back\\slash"), std::string_view("cr\r\nlf"),
                                 std::string_view("nul\0x", 5)}) {
        CAPTURE(bad);
        CHECK_FALSE(n.update(a, bad));
    }
    CHECK_FALSE(n.update(a, std::string(1025, 'n')));
    CHECK(n.get(a) == "n2");
}
