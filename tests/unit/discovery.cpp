// Authorization server metadata (RFC 8414): well-known URLs, the document's checks, and the
// client authentication automatic picks from it.
#include <tokenflight/discovery.hpp>

#include <doctest/doctest.h>

#include "keys.hpp"

using namespace tokenflight;

namespace {

std::vector<std::string> urls(std::string_view issuer) { return discovery_urls(issuer).value(); }

boost::system::result<server_metadata> parse(std::string_view body, std::string_view issuer = "https://as.example",
                                             unsigned status = 200) {
    diagnostics d;
    return parse_server_metadata(status, body, issuer, d);
}

} // namespace

TEST_CASE("well-known URLs: RFC 8414's inserted before the path, OpenID's appended") {
    CHECK(urls("https://as.example") == std::vector<std::string>{
                                            "https://as.example/.well-known/oauth-authorization-server",
                                            "https://as.example/.well-known/openid-configuration"});
    CHECK(urls("https://as.example/") == urls("https://as.example"));
    CHECK(urls("https://as.example:8443/tenant/1") ==
          std::vector<std::string>{"https://as.example:8443/.well-known/oauth-authorization-server/tenant/1",
                                   "https://as.example:8443/tenant/1/.well-known/openid-configuration"});
    CHECK(urls("http://127.0.0.1:4000") ==
          std::vector<std::string>{"http://127.0.0.1:4000/.well-known/oauth-authorization-server",
                                   "http://127.0.0.1:4000/.well-known/openid-configuration"});
    // An issuer has no query or fragment, and is an http(s) URL.
    CHECK(discovery_urls("https://as.example/?tenant=1").error() == errc::invalid_url);
    CHECK(discovery_urls("https://as.example/#x").error() == errc::invalid_url);
    CHECK(discovery_urls("ftp://as.example").error() == errc::unsupported_scheme);
    CHECK(discovery_urls("not a url").error() == errc::invalid_url);
}

TEST_CASE("a metadata document: the members tokenflight uses") {
    auto m = parse(R"({"issuer":"https://as.example","token_endpoint":"https://as.example/token",
        "token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_post",7],
        "token_endpoint_auth_signing_alg_values_supported":["PS256","ES256"],
        "dpop_signing_alg_values_supported":["ES256"],
        "mtls_endpoint_aliases":{"token_endpoint":"https://mtls.as.example/token"}})");
    REQUIRE(m.has_value());
    CHECK(m->issuer == "https://as.example");
    CHECK(m->token_endpoint == "https://as.example/token");
    CHECK(m->mtls_token_endpoint == "https://mtls.as.example/token");
    CHECK(m->auth_methods == std::vector<std::string>{"private_key_jwt", "client_secret_post"});
    CHECK(m->auth_signing_algs == std::vector<std::string>{"PS256", "ES256"});
    CHECK(m->dpop_signing_algs == std::vector<std::string>{"ES256"});
    CHECK(m->supports_auth("private_key_jwt"));
    CHECK_FALSE(m->supports_auth("client_secret_basic"));

    // Absent methods: RFC 8414's default, client_secret_basic. Absent aliases: none.
    auto plain = parse(R"({"issuer":"https://as.example","token_endpoint":"https://as.example/t"})");
    REQUIRE(plain.has_value());
    CHECK(plain->auth_methods == std::vector<std::string>{"client_secret_basic"});
    CHECK(plain->mtls_token_endpoint.empty());
    CHECK(plain->dpop_signing_algs.empty());
}

TEST_CASE("an issuer that differs, even by a slash or case, is issuer_mismatch") {
    for (std::string_view other : {"https://as.example/", "https://AS.example", "https://evil.example",
                                   "https://as.example\r\nX-Injected: 1"}) {
        CAPTURE(other);
        diagnostics d;
        std::string body = R"({"issuer":")";
        for (char c : other) body += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
        body += R"(","token_endpoint":"https://evil.example/token"})";
        auto m = parse_server_metadata(200, body, "https://as.example", d);
        REQUIRE_FALSE(m.has_value());
        CHECK(m.error() == errc::issuer_mismatch);
        CHECK(m.error() == condition::bad_response);
        CHECK(d.error_description.find("expected 'https://as.example'") != std::string::npos);
        CHECK(d.error_description.find('\n') == std::string::npos);
        CHECK(d.error_description.find('\r') == std::string::npos);
    }
}

TEST_CASE("every unusable document is bad_metadata, with the status and an excerpt") {
    const char* bodies[] = {
        "<html>Not Found</html>",
        "[1,2]",
        R"({"token_endpoint":"https://as.example/t"})",                           // no issuer
        R"({"issuer":7,"token_endpoint":"https://as.example/t"})",                // issuer not a string
        R"({"issuer":"https://as.example"})",                                     // no token endpoint
        R"({"issuer":"https://as.example","token_endpoint":"/relative"})",        // not absolute
        R"({"issuer":"https://as.example","token_endpoint":"ftp://as.example/"})", // not http(s)
        R"({"issuer":"https://as.example","token_endpoint":["https://as.example/t"]})",
        "",
    };
    for (const char* body : bodies) {
        CAPTURE(body);
        diagnostics d;
        auto m = parse_server_metadata(200, body, "https://as.example", d);
        REQUIRE_FALSE(m.has_value());
        CHECK(m.error() == errc::bad_metadata);
        CHECK(m.error() == condition::bad_response);
        CHECK(d.http_status == 200);
        CHECK_FALSE(d.error_description.empty());
    }
    diagnostics d;
    auto m = parse_server_metadata(404, R"({"issuer":"https://as.example","token_endpoint":"https://as.example/t"})",
                                   "https://as.example", d);
    CHECK(m.error() == errc::bad_metadata);
    CHECK(d.http_status == 404);
}

TEST_CASE("automatic picks from what the server supports and what the credentials hold") {
    server_metadata m;
    m.issuer = "https://as.example";
    m.token_endpoint = "https://as.example/token";
    const auto pick = [&](credentials c) { return choose_client_auth(m, c); };
    credentials secret_only;
    secret_only.client_id = "c";
    secret_only.client_secret = secret("s");
    secret_only.auth = client_auth::automatic;
    credentials with_key = secret_only;
    with_key.assertion.key = signing_key::generate_p256();

    m.auth_methods = {"client_secret_basic"}; // RFC 8414's default
    CHECK(pick(secret_only) == client_auth::basic);
    CHECK(pick(with_key) == client_auth::basic); // the key is not accepted there
    m.auth_methods = {"client_secret_post", "private_key_jwt"};
    CHECK(pick(secret_only) == client_auth::post);
    CHECK(pick(with_key) == client_auth::private_key_jwt);
    m.auth_methods = {"client_secret_post", "client_secret_basic", "client_secret_jwt"};
    CHECK(pick(secret_only) == client_auth::automatic); // Basic, then post: the fallback decides
    m.auth_methods = {"client_secret_jwt"};
    CHECK(pick(secret_only) == client_auth::client_secret_jwt);
    m.auth_methods = {"tls_client_auth"};
    CHECK(pick(secret_only) == client_auth::automatic); // nothing fits: try Basic, then post
    // An explicit method is kept whatever the server lists.
    credentials explicit_post = secret_only;
    explicit_post.auth = client_auth::post;
    m.auth_methods = {"client_secret_basic"};
    CHECK(pick(explicit_post) == client_auth::post);
}

TEST_CASE("automatic with a key takes an algorithm the server lists, unless one is configured") {
    server_metadata m;
    m.auth_methods = {"private_key_jwt"};
    credentials c;
    c.client_id = "c";
    c.auth = client_auth::automatic;
    c.assertion.key = signing_key::generate_p256();
    m.auth_signing_algs = {"ES256"};
    CHECK(choose_client_auth(m, c) == client_auth::private_key_jwt);
    CHECK_FALSE(c.assertion.alg); // the key's default is listed
    m.auth_signing_algs = {"RS256"};
    CHECK(choose_client_auth(m, c) == client_auth::private_key_jwt);
    CHECK_FALSE(c.assertion.alg); // nothing the key can sign is listed: its default, and the server decides

    c.assertion.key = signing_key::from_pem(secret(test::pem_of(test::make_rsa().get()))).value();
    m.auth_signing_algs = {"ES256", "PS256"};
    CHECK(choose_client_auth(m, c) == client_auth::private_key_jwt);
    CHECK(c.assertion.alg == jws_alg::ps256); // RS256 is not listed, PS256 is
    c.assertion.alg.reset();
    m.auth_signing_algs = {"PS256", "RS256"};
    choose_client_auth(m, c);
    CHECK_FALSE(c.assertion.alg); // the default, RS256, is listed
    c.assertion.alg = jws_alg::rs256;
    m.auth_signing_algs = {"PS256"};
    choose_client_auth(m, c);
    CHECK(c.assertion.alg == jws_alg::rs256); // configured: kept
}
