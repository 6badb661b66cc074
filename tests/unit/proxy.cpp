// Egress proxy choice without I/O: proxy URLs, NO_PROXY's conventions, the environment.
#include <tokenflight/http/proxy.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <doctest/doctest.h>

#include <map>
#include <sstream>

using namespace tokenflight;
using http::origin;

namespace {
origin at(std::string host, std::uint16_t port = 443, bool tls = true) { return origin{tls, std::move(host), port}; }
} // namespace

TEST_CASE("proxy URLs: http only, default port 80, user info as a Basic credential") {
    auto r = http::parse_proxy_url("http://proxy.corp:3128");
    REQUIRE(r.has_value());
    CHECK(r->proxy.host == "proxy.corp");
    CHECK(r->proxy.port == 3128);
    CHECK_FALSE(r->proxy.tls);
    CHECK(r->authorization.empty());
    CHECK(http::parse_proxy_url("proxy.corp").value().proxy.port == 80); // no scheme: http, as curl
    CHECK(http::parse_proxy_url("http://[::1]:8080/").value().proxy.host == "::1");
    auto a = http::parse_proxy_url("http://al%20ice:p%40ss@proxy.corp:3128");
    REQUIRE(a.has_value());
    CHECK(a->authorization.reveal() == "Basic " + base64_encode("al ice:p@ss"));
    std::ostringstream os;
    os << a->authorization;
    CHECK(os.str() == "***");
    for (std::string_view bad : {"https://proxy.corp:443", "socks5://proxy:1080", "http://", "http://proxy:0",
                                 "http://proxy:99999", "http://proxy/path", "http://proxy/?q", "::"}) {
        CAPTURE(bad);
        auto e = http::parse_proxy_url(bad);
        REQUIRE_FALSE(e.has_value());
        CHECK(e.error() == errc::invalid_proxy);
        CHECK(e.error() == condition::configuration);
    }
}

TEST_CASE("NO_PROXY: *, names and their subdomains, addresses, CIDR blocks, ports") {
    CHECK(http::no_proxy_matches("*", at("anything.example")));
    CHECK(http::no_proxy_matches("example.com", at("example.com")));
    CHECK(http::no_proxy_matches("example.com", at("api.EXAMPLE.com")));
    CHECK(http::no_proxy_matches(".example.com", at("api.example.com")));
    CHECK(http::no_proxy_matches(".example.com", at("example.com")));
    CHECK_FALSE(http::no_proxy_matches("example.com", at("badexample.com")));
    CHECK_FALSE(http::no_proxy_matches("example.com", at("example.com.evil")));
    CHECK(http::no_proxy_matches(" foo.test , example.com ", at("example.com")));
    CHECK_FALSE(http::no_proxy_matches("", at("example.com")));
    CHECK_FALSE(http::no_proxy_matches(",,", at("example.com")));
    // ports
    CHECK(http::no_proxy_matches("example.com:443", at("example.com", 443)));
    CHECK_FALSE(http::no_proxy_matches("example.com:8443", at("example.com", 443)));
    // addresses and blocks
    CHECK(http::no_proxy_matches("10.1.2.3", at("10.1.2.3")));
    CHECK_FALSE(http::no_proxy_matches("10.1.2.3", at("10.1.2.4")));
    CHECK(http::no_proxy_matches("10.0.0.0/8", at("10.200.3.4")));
    CHECK_FALSE(http::no_proxy_matches("10.0.0.0/8", at("11.0.0.1")));
    CHECK_FALSE(http::no_proxy_matches("10.0.0.0/8", at("ten.example")));
    CHECK(http::no_proxy_matches("fd00::/8", at("fd12::1")));
    CHECK(http::no_proxy_matches("::1", at("::1")));
    CHECK(http::no_proxy_matches("[::1]:8080", at("::1", 8080)));
    CHECK_FALSE(http::no_proxy_matches("[::1]:8080", at("::1", 443)));
    CHECK_FALSE(http::no_proxy_matches("1.2.3.4", at("example.com"))); // a name is not an address
}

TEST_CASE("route_for: the environment, lower case first; NO_PROXY; loopback direct; fixed and none") {
    std::map<std::string, std::string> env;
    const auto getenv = [&](const char* n) -> const char* {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    http::proxy_options o; // environment
    CHECK_FALSE(http::route_for(at("api.example"), o, getenv).value());
    env["HTTPS_PROXY"] = "http://upper:3128";
    env["https_proxy"] = "http://lower:3128";
    env["HTTP_PROXY"] = "http://plain:8080";
    auto r = http::route_for(at("api.example"), o, getenv).value();
    REQUIRE(r);
    CHECK(r->proxy.host == "lower");
    CHECK(http::route_for(at("api.example", 80, false), o, getenv).value()->proxy.host == "plain");
    CHECK_FALSE(http::route_for(at("127.0.0.1"), o, getenv).value()); // loopback: never from the environment
    CHECK_FALSE(http::route_for(at("localhost"), o, getenv).value());
    env["NO_PROXY"] = "internal.example,.corp";
    CHECK_FALSE(http::route_for(at("internal.example"), o, getenv).value());
    CHECK_FALSE(http::route_for(at("db.corp"), o, getenv).value());
    CHECK(http::route_for(at("api.example"), o, getenv).value());
    env["https_proxy"] = "https://tls-proxy:443";
    CHECK(http::route_for(at("api.example"), o, getenv).error() == errc::invalid_proxy);

    http::proxy_options fixed;
    fixed.from = http::proxy_options::source::fixed;
    fixed.url = "http://127.0.0.1:3128";
    fixed.no_proxy = "skip.example";
    CHECK(http::route_for(at("127.0.0.1", 8443), fixed, getenv).value()); // loopback too, when fixed
    CHECK_FALSE(http::route_for(at("skip.example"), fixed, getenv).value());
    http::proxy_options none;
    none.from = http::proxy_options::source::none;
    CHECK_FALSE(http::route_for(at("api.example"), none, getenv).value());
}
