#include "config.hpp"
#include "runner.hpp"

#include <tokenflight/error.hpp>
#include <tokenflight/signing_key.hpp>

#include <doctest/doctest.h>

#include "keys.hpp"
#include "tls_certs.hpp"
#include "temp_file.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

using namespace tokenflight;
using load::config;
using load::usage_error;

namespace {

struct fake_env {
    std::map<std::string, std::string> vars;
    std::function<const char*(const char*)> getter() {
        return [this](const char* n) -> const char* {
            auto it = vars.find(n);
            return it == vars.end() ? nullptr : it->second.c_str();
        };
    }
};

std::variant<config, usage_error> parse(std::vector<std::string_view> args, fake_env& env) {
    return load::parse_command_line(args, env.getter(), 2);
}

fake_env good_env() {
    fake_env e;
    e.vars = {{"TOKENFLIGHT_TOKEN_URL", "https://auth.example/token"},
              {"TOKENFLIGHT_CLIENT_ID", "cid"},
              {"TOKENFLIGHT_CLIENT_SECRET", "VERY-SECRET-VALUE"}};
    return e;
}

std::string error_of(const std::variant<config, usage_error>& r) {
    REQUIRE(std::holds_alternative<usage_error>(r));
    const auto& m = std::get<usage_error>(r).message;
    CHECK(m.find("VERY-SECRET-VALUE") == std::string::npos);
    CHECK(m.find('\n') == std::string::npos); // one line
    return m;
}

} // namespace

TEST_CASE("a full command line parses") {
    auto env = good_env();
    auto r = parse({"-c", "128", "-n", "5000", "-t", "3", "-H", "x-api-key: k1", "-H", "Origin:o", "-X", "PUT",
                    "--data", "{}", "--scope", "read write", "--auth-method", "post", "--auth-scheme", "none",
                    "--max-connections", "32", "--timeout", "2.5", "--json", "https://api.example/v1"},
                   env);
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.url == "https://api.example/v1");
    CHECK(c.concurrency == 128);
    CHECK(c.requests == 5000u);
    CHECK_FALSE(c.duration.has_value());
    CHECK(c.threads == 3);
    REQUIRE(c.headers.size() == 2);
    CHECK(c.headers[0] == std::pair<std::string, std::string>{"x-api-key", "k1"});
    CHECK(c.headers[1] == std::pair<std::string, std::string>{"Origin", "o"});
    CHECK(c.method == http::verb::put);
    CHECK(c.body == "{}");
    CHECK(c.creds.scope == "read write");
    CHECK(c.creds.auth == client_auth::post);
    REQUIRE(c.auth_scheme.has_value());
    CHECK(c.auth_scheme->empty());
    CHECK(c.max_connections == 32);
    CHECK(c.timeout == std::chrono::milliseconds(2500));
    CHECK(c.json);
    CHECK(c.creds.client_secret.reveal() == "VERY-SECRET-VALUE");
}

TEST_CASE("defaults: 10 s, 64 in flight, hardware threads") {
    auto env = good_env();
    auto r = parse({"https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.duration == std::chrono::seconds(10));
    CHECK(c.concurrency == 64);
    CHECK(c.threads == 2);
    CHECK_FALSE(c.rate.has_value());
}

TEST_CASE("--http2 and --h2c: HTTP/2 with one connection per event loop unless --max-connections says") {
    auto env = good_env();
    // Each result kept in a variable: the config lives in the variant parse() returns.
    const auto h1 = parse({"https://api.example/"}, env);
    CHECK(std::get<config>(h1).http_version == http::http_version::http1);
    const auto r = parse({"--http2", "-c", "512", "https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.http_version == http::http_version::http2);
    CHECK(c.concurrency == 512);
    CHECK(c.threads == 1); // one connection, so one loop
    const auto both = parse({"--h2c", "--http2", "-t", "2", "http://api.example/"}, env);
    CHECK(std::get<config>(both).http_version == http::http_version::h2c); // --http2 does not undo --h2c
    CHECK(std::get<config>(both).threads == 2);
    const auto four = parse({"--http2", "--max-connections", "4", "https://api.example/"}, env);
    CHECK(std::get<config>(four).threads == 2); // hardware threads, at most the connections
    CHECK(error_of(parse({"--http2", "-t", "4", "--max-connections", "2", "https://api.example/"}, env))
              .find("--max-connections 4") != std::string::npos);
}

TEST_CASE("--demo needs nothing else") {
    fake_env empty;
    auto r = parse({"--demo"}, empty);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).demo);
    CHECK(std::get<config>(r).duration.has_value());
    CHECK(error_of(parse({"--demo", "http://x/"}, empty)).find("no URL") != std::string::npos);
}

TEST_CASE("usage errors are one clear line, never with the secret") {
    auto env = good_env();
    CHECK(error_of(parse({}, env)).find("no URL") != std::string::npos);
    CHECK(error_of(parse({"-n", "5", "-d", "3", "https://a/"}, env)).find("-n and -d") != std::string::npos);
    CHECK(error_of(parse({"--bogus", "https://a/"}, env)).find("unknown option --bogus") != std::string::npos);
    CHECK(error_of(parse({"-c", "0", "https://a/"}, env)).find("-c") != std::string::npos);
    CHECK(error_of(parse({"-c"}, env)).find("needs a value") != std::string::npos);
    CHECK(error_of(parse({"-X", "FETCH", "https://a/"}, env)).find("HTTP method") != std::string::npos);
    CHECK(error_of(parse({"-H", "no-colon", "https://a/"}, env)).find("Name: value") != std::string::npos);
    CHECK(error_of(parse({"ftp://a/"}, env)).find("bad URL") != std::string::npos);
    CHECK(error_of(parse({"https://a/", "https://b/"}, env)).find("more than one URL") != std::string::npos);
    CHECK(error_of(parse({"--client-secret", "VERY-SECRET-VALUE", "https://a/"}, env)).find("not accepted") !=
          std::string::npos);
    CHECK(error_of(parse({"--client-secret=VERY-SECRET-VALUE", "https://a/"}, env)).find("not accepted") !=
          std::string::npos);

    auto no_secret = good_env();
    no_secret.vars.erase("TOKENFLIGHT_CLIENT_SECRET");
    CHECK(error_of(parse({"https://a/"}, no_secret)).find("no client secret") != std::string::npos);
    auto no_id = good_env();
    no_id.vars.erase("TOKENFLIGHT_CLIENT_ID");
    CHECK(error_of(parse({"https://a/"}, no_id)).find("no client id") != std::string::npos);
    auto no_token_url = good_env();
    no_token_url.vars.erase("TOKENFLIGHT_TOKEN_URL");
    CHECK(error_of(parse({"https://a/"}, no_token_url)).find("no token URL") != std::string::npos);
    CHECK(error_of(parse({"--client-secret-file", "/nonexistent/secret", "https://a/"}, env))
              .find("cannot read the client secret") != std::string::npos);
}

TEST_CASE("the secret can come from a file, and flags override the environment") {
    test::temp_file file("FILE-SECRET\n", "tokenflight-load-secret");
    auto env = good_env();
    auto r = parse({"--client-secret-file", file.path().c_str(), "--client-id", "other", "--token-url",
                    "http://127.0.0.1:9/token", "http://127.0.0.1:8/"},
                   env);
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.creds.client_secret.reveal() == "FILE-SECRET");
    CHECK(c.creds.client_id == "other");
    CHECK(c.creds.token_url == "http://127.0.0.1:9/token");
}

TEST_CASE("-t N: N event loops, each with at least one of -c and of --max-connections") {
    auto env = good_env();
    auto r = parse({"-t", "2", "-c", "2", "--max-connections", "2", "https://a/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).threads == 2);
    CHECK(error_of(parse({"-t", "4", "-c", "2", "https://a/"}, env)).find("-t 4 needs -c 4") != std::string::npos);
    CHECK(error_of(parse({"-c", "2", "-t", "4", "--demo"}, env)).find("-t 4 needs -c 4") != std::string::npos);
    CHECK(error_of(parse({"-t", "2", "-c", "8", "--max-connections", "1", "https://a/"}, env))
              .find("--max-connections 2") != std::string::npos);

    // Without -t, the default (hardware threads, 2 here) never exceeds either.
    auto one = parse({"-c", "1", "https://a/"}, env);
    REQUIRE(std::holds_alternative<config>(one));
    CHECK(std::get<config>(one).threads == 1);
    auto capped = parse({"-c", "64", "--max-connections", "1", "https://a/"}, env);
    REQUIRE(std::holds_alternative<config>(capped));
    CHECK(std::get<config>(capped).threads == 1);
}

TEST_CASE("a run splits over its loops: shares of -c, and requests k, k + N, ... of the sequence") {
    CHECK(load::share(10, 0, 4) == 3);
    CHECK(load::share(10, 1, 4) == 3);
    CHECK(load::share(10, 2, 4) == 2);
    CHECK(load::share(10, 3, 4) == 2);
    CHECK(load::share(7, 0, 1) == 7);
    int total = 0;
    for (int k = 0; k < 3; ++k) total += load::share(1000, k, 3);
    CHECK(total == 1000);

    load::plan whole;
    whole.concurrency = 5;
    whole.requests = 200;
    whole.rate = load::rate_schedule::constant(100.0);
    const auto start = tokenflight::clock::now();
    const auto p = load::plan_for_loop(whole, 1, 2, start);
    CHECK(p.concurrency == 2);
    CHECK(p.loop == 1);
    CHECK(p.loops == 2);
    CHECK(p.start == start);
    CHECK(p.requests == 200u); // the global count: the loop stops at its first index past it
    REQUIRE(p.rate.has_value()); // the global schedule: the loop keeps its slots of it
    CHECK(p.rate->due(3) == std::chrono::milliseconds(30));
}

TEST_CASE("--client-assertion-key: private_key_jwt, no client secret needed, the key checked at once") {
    fake_env env;
    env.vars = {{"TOKENFLIGHT_TOKEN_URL", "https://auth.example/token"}, {"TOKENFLIGHT_CLIENT_ID", "cid"}};
    test::temp_file pem(test::pem_of(test::make_ec().get()));
    const auto path = pem.path();

    auto r = parse({"--client-assertion-key", path, "--client-assertion-kid", "k1", "--client-assertion-aud",
                    "https://auth.example", "https://api.example/"},
                   env);
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.creds.auth == client_auth::private_key_jwt);
    REQUIRE(c.creds.assertion.key.has_value());
    CHECK(c.creds.assertion.key->type() == signing_key::kind::ec_p256);
    CHECK(c.creds.assertion.kid == "k1");
    CHECK(c.creds.assertion.audience == "https://auth.example");
    CHECK(c.creds.client_secret.empty());

    // Each misconfiguration: a usage error that names the problem and no key material.
    CHECK(error_of(parse({"--client-assertion-key", path, "--client-assertion-alg", "RS256", "https://a.example/"},
                         env))
              .find("does not fit the key") != std::string::npos);
    CHECK(error_of(parse({"--client-assertion-alg", "HS256", "https://a.example/"}, env)).find("RS256, PS256 or ES256") !=
          std::string::npos);
    CHECK(error_of(parse({"--client-assertion-key", "/nonexistent/key.pem", "https://a.example/"}, env))
              .find("cannot use the key in '/nonexistent/key.pem'") != std::string::npos);
    test::temp_file not_a_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    CHECK(error_of(parse({"--client-assertion-key", not_a_key.path(), "https://a.example/"}, env))
              .find("signing key") != std::string::npos);
    CHECK(error_of(parse({"--auth-method", "private_key_jwt", "https://a.example/"}, env))
              .find("needs --client-assertion-key") != std::string::npos);
    CHECK(error_of(parse({"--auth-method", "post", "--client-assertion-key", path, "https://a.example/"}, env))
              .find("not with --auth-method client_secret_post") != std::string::npos);
}

TEST_CASE("--auth-method client_secret_jwt still needs the secret") {
    auto env = good_env();
    auto r = parse({"--auth-method", "client_secret_jwt", "https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).creds.auth == client_auth::client_secret_jwt);
    env.vars.erase("TOKENFLIGHT_CLIENT_SECRET");
    CHECK(error_of(parse({"--auth-method", "client_secret_jwt", "https://api.example/"}, env)).find("no client secret") !=
          std::string::npos);
}

TEST_CASE("--proxy: a proxy URL or none; a bad one is a usage error that shows no credential") {
    auto env = good_env();
    auto r = parse({"--proxy", "http://u:pw@127.0.0.1:3128", "https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).proxy == "http://u:pw@127.0.0.1:3128");
    auto none = parse({"--proxy", "none", "https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(none));
    CHECK(std::get<config>(none).proxy == "none");
    const auto m = error_of(parse({"--proxy", "https://u:SECRET-proxy-pw@proxy:443", "https://api.example/"}, env));
    CHECK(m.find("--proxy") != std::string::npos);
    CHECK(m.find("SECRET-proxy-pw") == std::string::npos);
}

TEST_CASE("--client-cert and --client-key: tls_client_auth without a secret, the certificate only presented with one") {
    fake_env env;
    env.vars = {{"TOKENFLIGHT_TOKEN_URL", "https://auth.example/token"}, {"TOKENFLIGHT_CLIENT_ID", "cid"}};
    const auto ca = test::make_cert("cli CA", "", nullptr);
    const auto kc = test::make_cert("cli-client", "DNS:cli.test", &ca, -3600, 24 * 3600, "clientAuth");
    const auto other = test::make_cert("cli-other", "DNS:other.test", &ca, -3600, 24 * 3600, "clientAuth");
    test::temp_file cert(kc.cert_pem), key(kc.key_pem), wrong_key(other.key_pem);

    auto r = parse({"--client-cert", cert.path(), "--client-key", key.path(), "https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).creds.auth == client_auth::tls_client_auth);
    CHECK(std::get<config>(r).creds.certificate.subject() == "CN=cli-client");
    CHECK(std::get<config>(r).creds.client_secret.empty());
    r = parse({"--auth-method", "self_signed_tls_client_auth", "--client-cert", cert.path(), "--client-key", key.path(),
               "https://api.example/"},
              env);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).creds.auth == client_auth::self_signed_tls_client_auth);
    // --no-token: the certificate is still loaded, for the API.
    r = parse({"--no-token", "--client-cert", cert.path(), "--client-key", key.path(), "https://api.example/"}, env);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK_FALSE(std::get<config>(r).creds.certificate.empty());

    auto with_secret = good_env();
    r = parse({"--client-cert", cert.path(), "--client-key", key.path(), "https://api.example/"}, with_secret);
    REQUIRE(std::holds_alternative<config>(r));
    CHECK(std::get<config>(r).creds.auth == client_auth::basic);
    CHECK_FALSE(std::get<config>(r).creds.certificate.empty());

    // Each misconfiguration: one line naming the problem, never key material.
    CHECK(error_of(parse({"--client-cert", cert.path(), "https://a.example/"}, env)).find("go together") !=
          std::string::npos);
    CHECK(error_of(parse({"--client-key", key.path(), "https://a.example/"}, env)).find("go together") !=
          std::string::npos);
    const auto mismatch = error_of(parse({"--client-cert", cert.path(), "--client-key", wrong_key.path(), "https://a.example/"}, env));
    CHECK(mismatch.find("not the certificate's") != std::string::npos);
    CHECK(mismatch.find("PRIVATE") == std::string::npos);
    CHECK(error_of(parse({"--client-cert", "/nonexistent/c.pem", "--client-key", key.path(), "https://a.example/"}, env))
              .find("cannot use the client certificate '/nonexistent/c.pem'") != std::string::npos);
    CHECK(error_of(parse({"--client-cert", key.path(), "--client-key", key.path(), "https://a.example/"}, env))
              .find("no certificate") != std::string::npos);
    CHECK(error_of(parse({"--auth-method", "tls_client_auth", "https://a.example/"}, env))
              .find("tls_client_auth needs --client-cert") != std::string::npos);
}

TEST_CASE("fleet flags: --redis, --run with --workers, --collect alone, --demo-servers") {
    auto env = good_env();
    auto r = parse({"--redis", "redis://r:6379", "--redis-timeout", "0.5", "--redis-lease", "20", "--run", "nightly-4.2_x",
                    "--workers", "20", "--run-wait", "30", "https://api.example/"},
                   env);
    REQUIRE(std::holds_alternative<config>(r));
    const auto& c = std::get<config>(r);
    CHECK(c.redis_url == "redis://r:6379");
    CHECK(c.redis_timeout == std::chrono::milliseconds(500));
    CHECK(c.redis_lease == std::chrono::milliseconds(20'000));
    CHECK(c.run_id == "nightly-4.2_x");
    CHECK(c.workers == 20);
    CHECK(c.run_wait == std::chrono::seconds(30));

    // The Redis URL from the environment (a password stays out of ps); --collect needs no credentials.
    fake_env bare;
    bare.vars = {{"TOKENFLIGHT_REDIS_URL", "redis://:pw@r:6379"}};
    auto collect = parse({"--collect", "nightly"}, bare);
    REQUIRE(std::holds_alternative<config>(collect));
    CHECK(std::get<config>(collect).collect_id == "nightly");
    CHECK(std::get<config>(collect).redis_url == "redis://:pw@r:6379");
    fake_env none;
    CHECK(std::holds_alternative<config>(parse({"--demo-servers"}, none)));
}

TEST_CASE("fleet flags: each misuse is a usage error") {
    auto env = good_env();
    const std::string url = "https://api.example/";
    CHECK(error_of(parse({"--run", "a", "--workers", "2", url}, env)).find("give --redis") != std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--run", "a", url}, env)).find("go together") != std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--workers", "2", url}, env)).find("go together") != std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--run", "a b", "--workers", "2", url}, env)).find("letters") !=
          std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--run", std::string(65, 'a'), "--workers", "2", url}, env))
              .find("letters") != std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--run", "a", "--workers", "0", url}, env)).find("1 to 10000") !=
          std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--collect", "a", url}, env)).find("sends nothing") !=
          std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--collect", "a", "--run", "b"}, env)).find("no --run") !=
          std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--dpop", url}, env)).find("DPoP") != std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--demo"}, env)).find("--demo") != std::string::npos);
    CHECK(error_of(parse({"--redis", "redis://r", "--no-token", url}, env)).find("--no-token") != std::string::npos);
    CHECK(error_of(parse({"--redis-timeout", "0", url}, env)).find("above 0") != std::string::npos);
    CHECK(error_of(parse({"--demo-servers", url}, env)).find("only serves") != std::string::npos);
}
