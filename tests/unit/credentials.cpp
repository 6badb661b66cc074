#include <tokenflight/credentials.hpp>
#include <tokenflight/error.hpp>

#include <doctest/doctest.h>

#include "temp_file.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace tokenflight;

namespace {
struct env_guard {
    env_guard() { clear(); }
    ~env_guard() { clear(); }
    static void clear() {
        for (auto* n : {"TOKENFLIGHT_TOKEN_URL", "TOKENFLIGHT_CLIENT_ID", "TOKENFLIGHT_CLIENT_SECRET",
                        "TOKENFLIGHT_CLIENT_SECRET_FILE", "TOKENFLIGHT_SCOPE"})
            ::unsetenv(n);
    }
};
} // namespace

TEST_CASE("credentials come from the environment") {
    env_guard g;
    ::setenv("TOKENFLIGHT_TOKEN_URL", "https://auth.example/oauth2/token", 1);
    ::setenv("TOKENFLIGHT_CLIENT_ID", "id-1", 1);
    ::setenv("TOKENFLIGHT_CLIENT_SECRET", "sec-1", 1);
    ::setenv("TOKENFLIGHT_SCOPE", "read write", 1);
    auto c = credentials::from_env();
    REQUIRE(c.has_value());
    CHECK(c->token_url == "https://auth.example/oauth2/token");
    CHECK(c->client_id == "id-1");
    CHECK(c->client_secret.reveal() == "sec-1");
    CHECK(c->scope == "read write");
}

TEST_CASE("missing environment variables give missing_credentials") {
    env_guard g;
    ::setenv("TOKENFLIGHT_CLIENT_ID", "id-1", 1);
    auto c = credentials::from_env();
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error() == errc::missing_credentials);
}

TEST_CASE("the secret can come from a file, first line trimmed") {
    env_guard g;
    test::temp_file file("  file-secret-value \r\nsecond line ignored\n", "tokenflight-secret");
    const std::filesystem::path path = file.path();
    auto s = load_secret_file(path);
    REQUIRE(s.has_value());
    CHECK(s->reveal() == "file-secret-value");

    ::setenv("TOKENFLIGHT_TOKEN_URL", "https://auth.example/token", 1);
    ::setenv("TOKENFLIGHT_CLIENT_ID", "id", 1);
    ::setenv("TOKENFLIGHT_CLIENT_SECRET_FILE", path.c_str(), 1);
    auto c = credentials::from_env();
    REQUIRE(c.has_value());
    CHECK(c->client_secret.reveal() == "file-secret-value");
    file.remove();

    auto missing = load_secret_file(path);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
}

TEST_CASE("an empty secret file is an error") {
    test::temp_file empty("", "tokenflight-empty-secret");
    auto s = load_secret_file(empty.path());
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error() == errc::missing_credentials);
}
