#include <tokenflight/http/url.hpp>
#include <tokenflight/error.hpp>

#include <doctest/doctest.h>

using namespace tokenflight;

TEST_CASE("absolute URLs split into origin and target") {
    auto a = http::parse_url("https://api.example.com/v1/items?x=1");
    REQUIRE(a.has_value());
    CHECK(a->origin.tls);
    CHECK(a->origin.host == "api.example.com");
    CHECK(a->origin.port == 443);
    CHECK(a->target == "/v1/items?x=1");

    auto b = http::parse_url("http://127.0.0.1:8080");
    REQUIRE(b.has_value());
    CHECK_FALSE(b->origin.tls);
    CHECK(b->origin.port == 8080);
    CHECK(b->target == "/");
    CHECK(b->origin.to_string() == "http://127.0.0.1:8080");

    auto v6 = http::parse_url("http://[::1]:9000/t");
    REQUIRE(v6.has_value());
    CHECK(v6->origin.host == "::1");
    CHECK(v6->origin.to_string() == "http://[::1]:9000");
}

TEST_CASE("bad URLs are refused with a typed error") {
    CHECK(http::parse_url("not a url").error() == errc::invalid_url);
    CHECK(http::parse_url("ftp://example.com/").error() == errc::unsupported_scheme);
    CHECK(http::parse_url("https://user:pw@example.com/").error() == errc::invalid_url);
    CHECK(http::parse_url("http://example.com:0/").error() == errc::invalid_url);
    CHECK(http::parse_url("/relative/only").error() == errc::invalid_url);
}

TEST_CASE("loopback hosts are recognised") {
    CHECK(http::is_loopback_host("localhost"));
    CHECK(http::is_loopback_host("127.0.0.1"));
    CHECK(http::is_loopback_host("127.1.2.3"));
    CHECK(http::is_loopback_host("::1"));
    CHECK_FALSE(http::is_loopback_host("10.0.0.1"));
    CHECK_FALSE(http::is_loopback_host("example.com"));
    CHECK_FALSE(http::is_loopback_host("localhost.example.com"));
}

TEST_CASE("the Host authority brackets IPv6 and omits default ports") {
    CHECK(http::origin{.tls = false, .host = "::1", .port = 8080}.authority() == "[::1]:8080");
    CHECK(http::origin{.tls = true, .host = "2001:db8::1", .port = 443}.authority() == "[2001:db8::1]");
    CHECK(http::origin{.tls = false, .host = "api.example", .port = 80}.authority() == "api.example");
    CHECK(http::origin{.tls = true, .host = "api.example", .port = 80}.authority() == "api.example:80");
    CHECK(http::origin{.tls = false, .host = "127.0.0.1", .port = 9}.authority() == "127.0.0.1:9");
}

TEST_CASE("URLs in messages lose user info, query and controls") {
    CHECK(http::redact_url("https://user:pw@auth.example/token?client_secret=s#f") == "https://***@auth.example/token?***");
    CHECK(http::redact_url("https://auth.example/token") == "https://auth.example/token");
    CHECK(http::redact_url("https://host/p?x") == "https://host/p?***");
    CHECK(http::redact_url("https://host/p@q?x") == "https://***@q?***"); // ambiguous: masked
    CHECK(http::redact_url("http://[::1]:8080/t?x#f") == "http://[::1]:8080/t?***");
    // Unparsable: conservative, whatever characters the password holds.
    CHECK(http::redact_url("https://user:pa/ss@host/t") == "https://***@host/t");
    CHECK(http::redact_url("https://user:p?w@host") == "https://***@host");
    CHECK(http::redact_url("https://user:p#w@host/x?k") == "https://***@host/x?***");
    CHECK(http::redact_url("not a url?key=1") == "not a url?***");
    CHECK(http::redact_url("https://host/\x1b[2J") == "https://host/?[2J");
}
