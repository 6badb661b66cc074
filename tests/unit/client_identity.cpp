// http::client_identity: loading a client certificate and its key, what is refused, what prints.
#include <tokenflight/http/client_identity.hpp>

#include <tokenflight/credentials.hpp>
#include <tokenflight/discovery.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/signing_key.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <doctest/doctest.h>

#include "temp_file.hpp"
#include "tls_certs.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sstream>

using namespace tokenflight;
using http::client_identity;

namespace {

const test::key_and_cert& ca() {
    static const auto c = test::make_cert("identity test CA", "", nullptr);
    return c;
}

test::key_and_cert client_cert(const std::string& cn) {
    return test::make_cert(cn, "DNS:" + cn + ".test", &ca(), -3600, 24 * 3600, "clientAuth");
}

// The thumbprint computed here with OpenSSL's own digest of the certificate.
std::string expected_thumbprint(const std::string& cert_pem) {
    auto cert = test::detail::read_cert(cert_pem);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    REQUIRE(X509_digest(cert.get(), EVP_sha256(), md, &n) == 1);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(md), n));
}

std::string encrypted_pem(const std::string& key_pem) {
    auto key = test::detail::read_key(key_pem);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    const char pass[] = "passphrase";
    PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), pass, sizeof pass - 1, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string public_pem(const std::string& key_pem) {
    auto key = test::detail::read_key(key_pem);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), key.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

} // namespace

TEST_CASE("certificate_thumbprint is base64url SHA-256, unpadded (a known answer)") {
    // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
    CHECK(http::certificate_thumbprint("abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

TEST_CASE("a client certificate and its key load; the thumbprint and subject are the certificate's") {
    const auto kc = client_cert("svc-a");
    auto id = client_identity::from_pem(kc.cert_pem, secret(kc.key_pem));
    REQUIRE(id.has_value());
    CHECK_FALSE(id->empty());
    CHECK(static_cast<bool>(*id));
    CHECK(id->thumbprint() == expected_thumbprint(kc.cert_pem));
    CHECK(id->subject() == "CN=svc-a");

    SUBCASE("from files, and from one file holding both") {
        test::temp_file cert(kc.cert_pem), key(kc.key_pem), both(kc.cert_pem + kc.key_pem);
        auto a = client_identity::load_pem_files(cert.path(), key.path());
        REQUIRE(a.has_value());
        CHECK(a->thumbprint() == id->thumbprint());
        auto b = client_identity::load_pem_files(both.path(), both.path());
        REQUIRE(b.has_value());
        CHECK(b->thumbprint() == id->thumbprint());
        // Two loads are two identities (pooled apart); copies are one.
        CHECK_FALSE(*a == *b);
        const client_identity copy = *a;
        CHECK(copy == *a);
        CHECK(client_identity() == client_identity());
        CHECK_FALSE(client_identity() == *a);
    }
}

TEST_CASE("what cannot be a client identity is refused with a typed error, each kind") {
    const auto kc = client_cert("svc-b");
    const auto other = client_cert("svc-c");
    const auto from = [](const std::string& cert, const std::string& key) {
        auto r = client_identity::from_pem(cert, secret(key));
        REQUIRE_FALSE(r.has_value());
        return r.error();
    };
    CHECK(from(kc.cert_pem, other.key_pem) == errc::certificate_key_mismatch);
    CHECK(from("not a certificate", kc.key_pem) == errc::invalid_client_certificate);
    CHECK(from("", kc.key_pem) == errc::invalid_client_certificate);
    CHECK(from(kc.key_pem, kc.key_pem) == errc::invalid_client_certificate);   // a key where the certificate goes
    CHECK(from(kc.cert_pem, kc.cert_pem) == errc::invalid_client_certificate); // a certificate where the key goes
    CHECK(from(kc.cert_pem, public_pem(kc.key_pem)) == errc::invalid_client_certificate);
    CHECK(from(kc.cert_pem, encrypted_pem(kc.key_pem)) == errc::invalid_client_certificate); // never prompts
    CHECK(from(kc.cert_pem, "") == errc::invalid_client_certificate);
    // A chain whose second certificate is damaged: refused, never cut short silently.
    std::string damaged = other.cert_pem;
    damaged[damaged.find('\n') + 10] = '*';
    CHECK(from(kc.cert_pem + damaged, kc.key_pem) == errc::invalid_client_certificate);
    auto two = client_identity::from_pem(kc.cert_pem + other.cert_pem, secret(kc.key_pem));
    CHECK(two.has_value()); // the first is the client's, the second goes with it
    CHECK(error_code(errc::certificate_key_mismatch) == condition::configuration);
    CHECK(error_code(errc::invalid_client_certificate) == condition::configuration);

    test::temp_file cert(kc.cert_pem), key(kc.key_pem);
    auto missing = client_identity::load_pem_files("/nonexistent/cert.pem", key.path());
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    missing = client_identity::load_pem_files(cert.path(), "/nonexistent/key.pem");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    // A file past 64 KiB is not a certificate (and is not read whole).
    test::temp_file huge(kc.cert_pem + std::string(70 * 1024, '\n'));
    auto big = client_identity::load_pem_files(huge.path(), key.path());
    REQUIRE_FALSE(big.has_value());
    CHECK(big.error() == errc::invalid_client_certificate);
}

TEST_CASE("an identity prints its subject and thumbprint, never the key; so do credentials holding it") {
    const auto kc = client_cert("svc-d");
    auto id = client_identity::from_pem(kc.cert_pem, secret(kc.key_pem));
    REQUIRE(id.has_value());
    std::ostringstream os;
    os << *id;
    CHECK(os.str() == "client_identity(CN=svc-d, x5t#S256=" + std::string(id->thumbprint()) + ")");
    std::ostringstream empty;
    empty << client_identity();
    CHECK(empty.str() == "client_identity()");

    credentials c;
    c.client_id = "cid";
    c.certificate = *id;
    std::ostringstream cs;
    cs << c;
    CHECK(cs.str().find("certificate=client_identity(CN=svc-d") != std::string::npos);
    // Nothing of the key: neither its PEM body nor any line of it.
    const auto body_line = kc.key_pem.substr(kc.key_pem.find('\n') + 1, 40);
    for (const auto& s : {os.str(), cs.str()}) {
        CHECK(s.find("PRIVATE") == std::string::npos);
        CHECK(s.find(body_line) == std::string::npos);
    }
}

namespace {
credentials mtls_creds(client_auth auth) {
    const auto kc = client_cert("svc-m");
    credentials c;
    c.token_url = "https://as.example/token";
    c.client_id = "svc-m";
    c.auth = auth;
    c.certificate = client_identity::from_pem(kc.cert_pem, secret(kc.key_pem)).value();
    return c;
}
} // namespace

TEST_CASE("tls_client_auth and self_signed_tls_client_auth need a certificate, and no secret") {
    const auto code = [](const credentials& c) {
        auto m = effective_client_auth(c);
        return m ? error_code() : m.error();
    };
    for (auto method : {client_auth::tls_client_auth, client_auth::self_signed_tls_client_auth}) {
        auto c = mtls_creds(method);
        CHECK(effective_client_auth(c).value() == method);
        c.certificate = {};
        CHECK(code(c) == errc::missing_credentials);
        c.client_secret = secret("a secret is not a certificate");
        CHECK(code(c) == errc::missing_credentials);
    }
    CHECK(to_string(client_auth::tls_client_auth) == "tls_client_auth");
    CHECK(to_string(client_auth::self_signed_tls_client_auth) == "self_signed_tls_client_auth");
    // automatic: a certificate without a secret authenticates; with a secret it is only presented.
    auto c = mtls_creds(client_auth::automatic);
    CHECK(effective_client_auth(c).value() == client_auth::tls_client_auth);
    c.client_secret = secret("s");
    CHECK(effective_client_auth(c).value() == client_auth::automatic);
    c.assertion.key = signing_key::generate_p256();
    CHECK(effective_client_auth(c).value() == client_auth::private_key_jwt);
}

TEST_CASE("a tls_client_auth token request names the client and carries no other credential") {
    for (auto method : {client_auth::tls_client_auth, client_auth::self_signed_tls_client_auth}) {
        auto c = mtls_creds(method);
        c.client_secret = secret("MUST-NOT-BE-SENT");
        c.scope = "read";
        auto req = make_token_request(c, method, "as.example", "/token");
        CHECK(req.body() == "grant_type=client_credentials&client_id=svc-m&scope=read");
        CHECK(req[http::field::authorization].empty());
    }
}

TEST_CASE("automatic with a certificate and no secret picks the certificate method the server lists") {
    server_metadata m;
    m.issuer = "https://as.example";
    m.token_endpoint = "https://as.example/token";
    auto c = mtls_creds(client_auth::automatic);
    const auto pick = [&] {
        auto copy = c;
        return choose_client_auth(m, copy);
    };
    m.auth_methods = {"client_secret_basic", "tls_client_auth", "self_signed_tls_client_auth"};
    CHECK(pick() == client_auth::tls_client_auth);
    m.auth_methods = {"self_signed_tls_client_auth", "private_key_jwt"};
    CHECK(pick() == client_auth::self_signed_tls_client_auth);
    m.auth_methods = {"client_secret_basic"};
    CHECK(pick() == client_auth::automatic); // then effective_client_auth: tls_client_auth
    c.client_secret = secret("s");
    m.auth_methods = {"client_secret_basic", "tls_client_auth"};
    CHECK(pick() == client_auth::basic); // the secret authenticates; the certificate is presented
}
