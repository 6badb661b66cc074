#include <tokenflight/www_authenticate.hpp>

#include <doctest/doctest.h>

using namespace tokenflight;

TEST_CASE("an RFC 6750 Bearer challenge") {
    auto cs = parse_www_authenticate(
        R"(Bearer realm="example", error="invalid_token", error_description="The access token expired")");
    REQUIRE(cs.size() == 1);
    CHECK(cs[0].scheme == "Bearer");
    CHECK(cs[0].param("realm") == "example");
    CHECK(cs[0].error() == "invalid_token");
    CHECK(cs[0].error_description() == "The access token expired");
}

TEST_CASE("several challenges, token values, escapes and odd spacing") {
    auto cs = parse_www_authenticate(
        R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple" , Bearer)");
    REQUIRE(cs.size() == 3);
    CHECK(cs[0].scheme == "Newauth");
    CHECK(cs[0].param("type") == "1");
    CHECK(cs[0].param("title") == R"(Login to "apps")");
    CHECK(cs[1].scheme == "Basic");
    CHECK(cs[1].param("realm") == "simple");
    CHECK(cs[2].scheme == "Bearer");
    CHECK(cs[2].params.empty());
    REQUIRE(find_challenge(cs, "basic") != nullptr);
    CHECK(find_challenge(cs, "basic")->param("REALM") == "simple");
    CHECK(find_challenge(cs, "Digest") == nullptr);
}

TEST_CASE("token68 challenges") {
    auto cs = parse_www_authenticate("Negotiate abc+/DEF==, Bearer error=invalid_token");
    REQUIRE(cs.size() == 2);
    CHECK(cs[0].token68 == "abc+/DEF==");
    CHECK(cs[1].error() == "invalid_token");
}

TEST_CASE("malformed headers never throw and keep what parsed") {
    CHECK(parse_www_authenticate("").empty());
    CHECK(parse_www_authenticate("   ,, ").empty());
    auto unterminated = parse_www_authenticate(R"(Bearer error="invalid_token)");
    REQUIRE(unterminated.size() == 1);
    CHECK(unterminated[0].scheme == "Bearer");
    auto junk = parse_www_authenticate("\"quoted\" Bearer");
    CHECK(junk.empty());
    auto eq = parse_www_authenticate("Bearer =x");
    REQUIRE(eq.size() == 1);
}
