// Redis's protocol through hiredis's formatter and reader, bounded; and Redis URLs.
#include "redis/resp.hpp"
#include "redis/url.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace tokenflight;
using redis::reply;

namespace {

// Every reply in `bytes`, fed `chunk` bytes at a time.
std::vector<reply> read_all(std::string_view bytes, std::size_t chunk) {
    redis::reply_reader r;
    std::vector<reply> out;
    for (std::size_t at = 0; at < bytes.size(); at += chunk) {
        REQUIRE_FALSE(r.feed(bytes.substr(at, chunk)));
        for (;;) {
            auto next = r.next();
            REQUIRE(next.has_value());
            if (!*next) break;
            out.push_back(std::move(**next));
        }
    }
    return out;
}

} // namespace

TEST_CASE("commands are formatted binary-safe, one after another for a pipeline") {
    std::string out;
    redis::append_command(out, {"SET", "k", std::string_view("a\r\nb\0c", 6), "NX", "PX", "500"});
    redis::append_command(out, {"GET", "k"});
    CHECK(out == std::string("*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\nb\0c\r\n$2\r\nNX\r\n$2\r\nPX\r\n$3\r\n500\r\n"
                             "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
                             77));
}

TEST_CASE("replies of every kind, however the bytes are split") {
    const std::string bytes = "+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n$5\r\nab\r\nc\r\n*3\r\n$1\r\nx\r\n:7\r\n*1\r\n+in\r\n*-1\r\n";
    for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{7}, bytes.size()}) {
        INFO("chunks of " << chunk);
        const auto replies = read_all(bytes, chunk);
        REQUIRE(replies.size() == 7);
        CHECK(replies[0].type == reply::kind::status);
        CHECK(replies[0].text == "OK");
        CHECK(replies[1].is_error());
        CHECK(replies[1].text == "ERR wrong");
        CHECK(replies[2].integer == 42);
        CHECK(replies[3].is_nil());
        CHECK(replies[4].text == "ab\r\nc");
        REQUIRE(replies[5].elements.size() == 3);
        CHECK(replies[5].elements[0].text == "x");
        CHECK(replies[5].elements[1].integer == 7);
        CHECK(replies[5].elements[2].elements.at(0).text == "in");
        CHECK(replies[6].is_nil()); // a nil array
    }
}

TEST_CASE("bytes that are not RESP fail, and the reader stays failed") {
    redis::reply_reader r;
    REQUIRE_FALSE(r.feed("HTTP/1.1 200 OK\r\n\r\n"));
    CHECK(r.next().error() == errc::malformed_response);
    CHECK(r.feed("+OK\r\n") == errc::malformed_response);
    CHECK_FALSE(r.next().has_value());
}

TEST_CASE("an array announcing more elements than the limit can hold is refused before any allocation") {
    redis::reply_reader r(1024);
    REQUIRE_FALSE(r.feed("*268435455\r\n")); // 13 bytes that would ask hiredis for 2 GiB
    CHECK(r.next().error() == errc::body_too_large);
    redis::reply_reader fits(1024);
    REQUIRE_FALSE(fits.feed("*3\r\n:1\r\n:2\r\n:3\r\n"));
    auto three = fits.next();
    REQUIRE(three.has_value());
    REQUIRE(three->has_value());
    CHECK((*three)->elements.size() == 3);
}

TEST_CASE("a reply past the limit is refused while it comes, complete or not") {
    redis::reply_reader r(1024);
    REQUIRE_FALSE(r.feed("$100000\r\n"));
    auto n = r.next();
    REQUIRE(n.has_value());
    CHECK_FALSE(n->has_value()); // more bytes wanted
    std::string chunk(512, 'x');
    CHECK_FALSE(r.feed(chunk));
    CHECK(r.feed(chunk) == errc::body_too_large);
    // Replies read make room: many small replies within the limit each pass.
    redis::reply_reader small(64);
    for (int i = 0; i < 100; ++i) {
        REQUIRE_FALSE(small.feed("+OK\r\n"));
        auto ok = small.next();
        REQUIRE(ok.has_value());
        REQUIRE(ok->has_value());
    }
}

TEST_CASE("Redis URLs: scheme, host, port, ACL user and password, database") {
    auto e = redis::parse_redis_url("redis://127.0.0.1:6380/2");
    REQUIRE(e.has_value());
    CHECK_FALSE(e->tls);
    CHECK(e->host == "127.0.0.1");
    CHECK(e->port == "6380");
    CHECK(e->database == 2);
    CHECK(e->password.empty());

    e = redis::parse_redis_url("rediss://fleet:p%40ss%3Aword@cache.example");
    REQUIRE(e.has_value());
    CHECK(e->tls);
    CHECK(e->port == "6379");
    CHECK(e->user == "fleet");
    CHECK(e->password.reveal() == "p@ss:word");
    CHECK(e->database == 0);
    CHECK(e->redacted() == "rediss://cache.example:6379/0");

    e = redis::parse_redis_url("redis://:only-password@[::1]:7000");
    REQUIRE(e.has_value());
    CHECK(e->user.empty());
    CHECK(e->password.reveal() == "only-password");
    CHECK(e->host == "::1");
    CHECK(e->redacted() == "redis://[::1]:7000/0");

    e = redis::parse_redis_url("redis://just-a-password@127.0.0.1");
    REQUIRE(e.has_value());
    CHECK(e->user.empty());
    CHECK(e->password.reveal() == "just-a-password");

    CHECK(redis::parse_redis_url("http://127.0.0.1/").error() == errc::unsupported_scheme);
    for (const char* bad : {"redis://", "redis://host:0", "redis://host/db", "redis://host/-1", "redis://host/1?x=y",
                            "127.0.0.1:6379", "redis://host:99999", "redis://user:@host", "redis://@host",
                            "redis://bad%00host", "redis://bad%20host"})
        CHECK_MESSAGE(!redis::parse_redis_url(bad).has_value(), std::string(bad));
}
