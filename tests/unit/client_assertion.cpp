// Client assertions (RFC 7523): keys loaded from PEM, JWTs built and signed, every signature
// checked here with OpenSSL against the public key the test made (not through tokenflight).
#include <tokenflight/signing_key.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <doctest/doctest.h>

#include "keys.hpp"
#include "temp_file.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

using test::make_ec;
using test::pkey_ptr;
using test::make_rsa;
using test::pem_of;

std::string unb64(std::string_view s) {
    auto d = base64_decode(s);
    REQUIRE(d.has_value());
    return *d;
}

struct jwt {
    json::object header, claims;
    std::string signing_input, signature;
};

jwt split(std::string_view token) {
    const auto a = token.find('.');
    const auto b = token.find('.', a + 1);
    REQUIRE(a != std::string_view::npos);
    REQUIRE(b != std::string_view::npos);
    REQUIRE(token.find('.', b + 1) == std::string_view::npos);
    for (char c : token) CHECK(((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '_' || c == '.')); // base64url, no padding
    jwt j;
    j.header = json::parse(unb64(token.substr(0, a))).as_object();
    j.claims = json::parse(unb64(token.substr(a + 1, b - a - 1))).as_object();
    j.signing_input = std::string(token.substr(0, b));
    j.signature = unb64(token.substr(b + 1));
    return j;
}

bool verify(EVP_PKEY* k, jws_alg alg, const std::string& input, const std::string& sig) {
    return test::verify_jws(k, to_string(alg), input, sig);
}

credentials assertion_creds(std::optional<signing_key> key, client_auth auth = client_auth::private_key_jwt) {
    credentials c;
    c.token_url = "https://auth.example/oauth2/token";
    c.client_id = "svc-42";
    c.auth = auth;
    c.assertion.key = std::move(key);
    return c;
}

const auto wall_now = std::chrono::system_clock::from_time_t(1'800'000'000);

} // namespace

TEST_CASE("jws_alg names round-trip, and only the JOSE spelling parses") {
    for (auto a : {jws_alg::rs256, jws_alg::ps256, jws_alg::es256, jws_alg::hs256})
        CHECK(parse_jws_alg(to_string(a)) == a);
    CHECK(to_string(jws_alg::ps256) == "PS256");
    CHECK_FALSE(parse_jws_alg("rs256"));
    CHECK_FALSE(parse_jws_alg("none"));
    CHECK_FALSE(parse_jws_alg("ES384"));
}

TEST_CASE("base64url has no padding and uses - and _") {
    CHECK(base64url_encode("") == "");
    CHECK(base64url_encode("f") == "Zg");
    CHECK(base64url_encode("fo") == "Zm8");
    CHECK(base64url_encode("foo") == "Zm9v");
    CHECK(base64url_encode("\xfb\xff\xbf") == "-_-_");
}

TEST_CASE("each algorithm signs an assertion the public key verifies, with the RFC 7523 claims") {
    struct row {
        jws_alg alg;
        pkey_ptr key;
    };
    row rows[] = {{jws_alg::rs256, make_rsa()}, {jws_alg::ps256, make_rsa(3072)}, {jws_alg::es256, make_ec()}};
    for (auto& r : rows) {
        CAPTURE(to_string(r.alg));
        auto key = signing_key::from_pem(secret(pem_of(r.key.get())));
        REQUIRE(key.has_value());
        CHECK(key->supports(r.alg));
        auto c = assertion_creds(*key);
        c.assertion.alg = r.alg;
        c.assertion.kid = "key-7";
        c.assertion.lifetime = 90s;
        auto made = make_client_assertion(c, client_auth::private_key_jwt, c.token_url, wall_now, "jti-1");
        REQUIRE(made.has_value());
        const auto j = split(made->reveal());
        CHECK(j.header.at("alg").as_string() == to_string(r.alg));
        CHECK(j.header.at("typ").as_string() == "JWT");
        CHECK(j.header.at("kid").as_string() == "key-7");
        CHECK(j.claims.at("iss").as_string() == "svc-42");
        CHECK(j.claims.at("sub").as_string() == "svc-42");
        CHECK(j.claims.at("aud").as_string() == "https://auth.example/oauth2/token");
        CHECK(j.claims.at("jti").as_string() == "jti-1");
        CHECK(j.claims.at("iat").as_int64() == 1'800'000'000);
        CHECK(j.claims.at("exp").as_int64() == 1'800'000'090);
        CHECK(verify(r.key.get(), r.alg, j.signing_input, j.signature));
        // A changed byte fails: the check above can fail.
        std::string tampered = j.signing_input;
        tampered[tampered.size() - 1] ^= 1;
        CHECK_FALSE(verify(r.key.get(), r.alg, tampered, j.signature));
    }
}

TEST_CASE("the default algorithm is the key's; without a kid the header has none") {
    auto rsa = make_rsa();
    auto key = signing_key::from_pem(secret(pem_of(rsa.get()))).value();
    CHECK(key.type() == signing_key::kind::rsa);
    CHECK(key.bits() == 2048);
    CHECK(key.default_alg() == jws_alg::rs256);
    auto c = assertion_creds(key);
    const auto j = split(make_client_assertion(c, client_auth::private_key_jwt, "aud", wall_now, "x").value().reveal());
    CHECK(j.header.at("alg").as_string() == "RS256");
    CHECK_FALSE(j.header.contains("kid"));
    CHECK(j.claims.at("exp").as_int64() - j.claims.at("iat").as_int64() == 60);
    CHECK(verify(rsa.get(), jws_alg::rs256, j.signing_input, j.signature));

    auto ec = make_ec();
    CHECK(signing_key::from_pem(secret(pem_of(ec.get()))).value().default_alg() == jws_alg::es256);
}

TEST_CASE("client_secret_jwt is HS256 keyed with the client secret") {
    auto c = assertion_creds(std::nullopt, client_auth::client_secret_jwt);
    c.client_secret = secret("a-long-enough-shared-secret-for-hs256-0123456789");
    auto made = make_client_assertion(c, client_auth::client_secret_jwt, "https://issuer.example", wall_now, "j");
    REQUIRE(made.has_value());
    const auto j = split(made->reveal());
    CHECK(j.header.at("alg").as_string() == "HS256");
    CHECK(j.claims.at("aud").as_string() == "https://issuer.example");
    unsigned char mac[32];
    unsigned len = 0;
    const auto k = c.client_secret.reveal();
    HMAC(EVP_sha256(), k.data(), static_cast<int>(k.size()),
         reinterpret_cast<const unsigned char*>(j.signing_input.data()), j.signing_input.size(), mac, &len);
    CHECK(j.signature == std::string(reinterpret_cast<char*>(mac), len));
    // The secret is not in the assertion in any form.
    CHECK(made->reveal().find(base64url_encode(k)) == std::string_view::npos);
}

TEST_CASE("every jti is fresh") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto j = random_jti();
        CHECK(j.size() == 22); // 128 bits, base64url without padding
        CHECK(seen.insert(j).second);
    }
}

TEST_CASE("keys that cannot sign are refused with invalid_signing_key, never a prompt or a crash") {
    const auto refused = [](const std::string& pem) {
        auto k = signing_key::from_pem(secret(pem));
        return !k && k.error() == errc::invalid_signing_key;
    };
    auto rsa = make_rsa();
    CHECK(refused(""));
    CHECK(refused("not a key at all"));
    CHECK(refused(pem_of(rsa.get(), false)));                     // a public key
    CHECK(refused(pem_of(rsa.get(), true, "correct horse")));     // encrypted: refused, not prompted
    CHECK(refused(pem_of(make_rsa(1024).get())));                 // too short for RS256
    CHECK(refused(pem_of(make_ec("P-384").get())));               // another curve
    auto pem = pem_of(rsa.get());
    CHECK(refused(pem.substr(0, pem.size() / 2)));                // truncated
    CHECK(signing_key::from_pem(secret(pem)).has_value());        // and the whole one is fine
}

TEST_CASE("key files: a missing file keeps its error, a huge one is refused unread") {
    auto missing = signing_key::load_pem_file("/nonexistent/tf/key.pem");
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == boost::system::errc::no_such_file_or_directory);
    CHECK(missing.error() != condition::configuration); // an I/O error, not ours

    auto ec = make_ec();
    test::temp_file good(pem_of(ec.get()));
    auto loaded = signing_key::load_pem_file(good.path());
    REQUIRE(loaded.has_value());
    CHECK(loaded->type() == signing_key::kind::ec_p256);

    test::temp_file huge(std::string(200 * 1024, 'A'));
    auto k = signing_key::load_pem_file(huge.path());
    REQUIRE_FALSE(k);
    CHECK(k.error() == errc::invalid_signing_key);
}

TEST_CASE("an algorithm that does not fit the key or the method is key_algorithm_mismatch") {
    auto rsa = signing_key::from_pem(secret(pem_of(make_rsa().get()))).value();
    auto ec = signing_key::from_pem(secret(pem_of(make_ec().get()))).value();
    const auto mismatch = [](const credentials& c) {
        auto m = effective_client_auth(c);
        return !m && m.error() == errc::key_algorithm_mismatch && m.error() == condition::configuration;
    };
    auto c = assertion_creds(rsa);
    c.assertion.alg = jws_alg::es256;
    CHECK(mismatch(c));
    c.assertion.alg = jws_alg::hs256;
    CHECK(mismatch(c));
    c = assertion_creds(ec);
    c.assertion.alg = jws_alg::rs256;
    CHECK(mismatch(c));
    c.assertion.alg = jws_alg::ps256;
    CHECK(mismatch(c));
    c.assertion.alg = jws_alg::es256;
    CHECK(effective_client_auth(c).value() == client_auth::private_key_jwt);
    auto s = assertion_creds(std::nullopt, client_auth::client_secret_jwt);
    s.client_secret = secret(std::string(32, 's'));
    s.assertion.alg = jws_alg::rs256;
    CHECK(mismatch(s));
    // The key refuses to sign with the wrong algorithm itself, too.
    CHECK(rsa.sign(jws_alg::es256, "x").error() == errc::key_algorithm_mismatch);
    CHECK(ec.sign(jws_alg::hs256, "x").error() == errc::key_algorithm_mismatch);
}

TEST_CASE("effective_client_auth: what each method needs, and automatic with a key") {
    auto key = signing_key::generate_p256();
    const auto code = [](const credentials& c) {
        auto m = effective_client_auth(c);
        return m ? error_code() : m.error();
    };
    auto c = assertion_creds(std::nullopt);
    CHECK(code(c) == errc::missing_credentials); // private_key_jwt without a key
    c.assertion.key = key;
    CHECK(code(c) == error_code());
    c.client_id.clear();
    CHECK(code(c) == errc::missing_credentials);
    c = assertion_creds(key, client_auth::automatic);
    CHECK(effective_client_auth(c).value() == client_auth::private_key_jwt);
    c = assertion_creds(std::nullopt, client_auth::automatic);
    CHECK(code(c) == errc::missing_credentials); // no key and no secret
    c.client_secret = secret("s");
    CHECK(effective_client_auth(c).value() == client_auth::automatic);
    c.auth = client_auth::client_secret_jwt;
    CHECK(code(c) == errc::invalid_signing_key); // RFC 7518 section 3.2: an HS256 key of 32 bytes at least
    c.client_secret = secret(std::string(31, 'k'));
    CHECK(code(c) == errc::invalid_signing_key);
    c.client_secret = secret(std::string(32, 'k'));
    CHECK(effective_client_auth(c).value() == client_auth::client_secret_jwt);
    c.assertion.lifetime = std::chrono::seconds(0); // exp would not follow iat
    CHECK(code(c) == errc::invalid_signing_key);
    c.assertion.lifetime = std::chrono::seconds(60);
    c.client_secret.clear();
    CHECK(code(c) == errc::missing_credentials);
    c = assertion_creds(key);
    c.assertion.lifetime = std::chrono::seconds(-5);
    CHECK(code(c) == errc::invalid_signing_key);
}

TEST_CASE("the token request carries the assertion, and no secret or Basic header") {
    auto c = assertion_creds(signing_key::generate_p256());
    c.client_secret = secret("MUST-NOT-BE-SENT");
    c.scope = "read";
    const secret assertion("aaa.bbb.ccc");
    auto req = make_token_request(c, client_auth::private_key_jwt, "auth.example", "/oauth2/token", assertion);
    CHECK(req.body() == "grant_type=client_credentials&client_id=svc-42"
                        "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                        "&client_assertion=aaa.bbb.ccc&scope=read");
    CHECK(req[http::field::authorization].empty());
    CHECK(req.body().find("MUST-NOT-BE-SENT") == std::string::npos);
}

TEST_CASE("a signing key and credentials holding one print no key material") {
    auto rsa = make_rsa();
    const auto pem = pem_of(rsa.get());
    auto key = signing_key::from_pem(secret(pem)).value();
    std::ostringstream k;
    k << key;
    CHECK(k.str() == "signing_key(RSA 2048)");
    auto c = assertion_creds(key);
    c.assertion.alg = jws_alg::ps256;
    std::ostringstream os;
    os << c;
    CHECK(os.str().find("auth=private_key_jwt") != std::string::npos);
    CHECK(os.str().find("assertion_key=signing_key(RSA 2048)") != std::string::npos);
    CHECK(os.str().find("assertion_alg=PS256") != std::string::npos);
    // No line of the PEM body (64 base64 characters each) appears anywhere.
    std::istringstream lines(pem);
    for (std::string line; std::getline(lines, line);)
        if (line.size() == 64) CHECK(os.str().find(line) == std::string::npos);
    std::ostringstream e;
    e << signing_key::generate_p256();
    CHECK(e.str() == "signing_key(EC P-256)");
}

TEST_CASE("the public JWK has no private member, and its thumbprint follows RFC 7638") {
    auto ec = signing_key::generate_p256();
    const auto jwk = json::parse(ec.public_jwk()).as_object();
    CHECK(jwk.size() == 4);
    CHECK(jwk.at("kty").as_string() == "EC");
    CHECK(jwk.at("crv").as_string() == "P-256");
    CHECK(unb64(jwk.at("x").as_string()).size() == 32);
    CHECK(unb64(jwk.at("y").as_string()).size() == 32);
    CHECK_FALSE(jwk.contains("d"));
    auto rsa = signing_key::from_pem(secret(pem_of(make_rsa().get()))).value();
    const auto rj = json::parse(rsa.public_jwk()).as_object();
    CHECK(rj.size() == 3);
    CHECK(rj.at("e").as_string() == "AQAB");
    CHECK(unb64(rj.at("n").as_string()).size() == 256);
    CHECK_FALSE(rj.contains("d"));

    // RFC 7638 hashes the required members in lexicographic order with no whitespace, which is
    // how public_jwk() writes them; the thumbprint is base64url(SHA-256) of exactly that text.
    CHECK(rsa.public_jwk().starts_with(R"({"e":"AQAB","kty":"RSA","n":")"));
    CHECK(ec.public_jwk().starts_with(R"({"crv":"P-256","kty":"EC","x":")"));
    for (const auto* k : {&ec, &rsa}) {
        const auto text = k->public_jwk();
        unsigned char digest[32];
        unsigned len = 0;
        EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
        CHECK(k->jwk_thumbprint() == base64url_encode(std::string_view(reinterpret_cast<char*>(digest), len)));
    }
    CHECK(ec.jwk_thumbprint() != signing_key::generate_p256().jwk_thumbprint());
}
