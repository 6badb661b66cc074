#include <tokenflight/http/header_syntax.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace tokenflight;
using namespace tokenflight::http;

TEST_CASE("RFC 9110 tokens") {
    CHECK(is_token("Bearer"));
    CHECK(is_token("x-api-key"));
    CHECK(is_token("!#$%&'*+-.^_`|~09azAZ"));
    CHECK_FALSE(is_token(""));
    for (char c : std::string("\r\n\t \0:;,\"()/<=>?@[\\]{}\x7f\x80", 24)) {
        CAPTURE(static_cast<int>(static_cast<unsigned char>(c)));
        CHECK_FALSE(is_token(std::string("a") + c + "b"));
    }
}

TEST_CASE("field values: every control but HTAB is refused, obs-text passes") {
    CHECK(is_field_value(""));
    CHECK(is_field_value("Bearer abc.def!~"));
    CHECK(is_field_value("a\tb"));
    CHECK(is_field_value("caf\xc3\xa9"));
    for (int c = 0; c < 0x20; ++c) {
        if (c == '\t') continue;
        CAPTURE(c);
        CHECK_FALSE(is_field_value(std::string("a") + static_cast<char>(c) + "b"));
    }
    CHECK_FALSE(is_field_value("a\x7f"));
}

TEST_CASE("request targets are visible ASCII") {
    CHECK(is_request_target("/a/b?c=d&e=%20"));
    CHECK_FALSE(is_request_target(""));
    CHECK_FALSE(is_request_target("/a b"));
    CHECK_FALSE(is_request_target("/a\r\nX: y"));
    CHECK_FALSE(is_request_target(std::string("/a\0", 3)));
}

TEST_CASE("a Transfer-Encoding counts as chunked framing only as a clean coding list ending in chunked") {
    auto with = [](std::initializer_list<const char*> values) {
        response r;
        for (auto v : values) r.insert(field::transfer_encoding, v);
        return is_chunked_coding_list(r);
    };
    CHECK(with({"chunked"}));
    CHECK(with({"chUnked"}));
    CHECK(with({"gzip, chunked"}));
    CHECK(with({"gzip", "chunked"}));
    CHECK(with({"gzip ,\tchunked "}));
    CHECK(with({", chunked"}));
    CHECK_FALSE(with({}));
    CHECK_FALSE(with({"chunked", "gzip"}));
    CHECK_FALSE(with({"chunked, gzip"}));
    CHECK_FALSE(with({"chunked, chunked"}));
    CHECK_FALSE(with({"chunked;q=1"}));
    CHECK_FALSE(with({"chunked\xff\xff"})); // the fuzzer's find (fuzz/regressions/http_response)
    CHECK_FALSE(with({"identity"}));
    CHECK_FALSE(with({"chunked x"}));
}

TEST_CASE("the request head is serialised only when every part is clean") {
    request req{verb::post, "/token", 11};
    req.set(field::host, "auth.example");
    req.set("x-api-key", "k\tv");
    std::string head;
    CHECK_FALSE(serialize_request_head(req, head));
    CHECK(head == "POST /token HTTP/1.1\r\nHost: auth.example\r\nx-api-key: k\tv\r\n\r\n");

    struct bad_case {
        const char* what;
        std::string name, value;
        errc expected;
    };
    const bad_case cases[] = {
        {"CR LF", "x", "a\r\nX-Evil: 1", errc::invalid_header_value},
        {"LF", "x", "a\nb", errc::invalid_header_value},
        {"CR", "x", "a\rb", errc::invalid_header_value},
        {"NUL", "x", std::string("a\0b", 3), errc::invalid_header_value},
        {"BEL", "x", "a\ab", errc::invalid_header_value},
        {"DEL", "x", "a\x7f", errc::invalid_header_value},
        {"empty name", "", "v", errc::invalid_header_name},
        {"colon", "a:b", "v", errc::invalid_header_name},
        {"CR LF in name", "a\r\nb", "v", errc::invalid_header_name},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        request r{verb::get, "/", 11};
        r.insert(c.name, c.value);
        head = "stale";
        CHECK(serialize_request_head(r, head) == c.expected);
        CHECK(head.empty());
    }
    request target{verb::get, "/a b", 11};
    CHECK(serialize_request_head(target, head) == errc::invalid_request_target);
    request method{verb::get, "/", 11};
    method.method_string("GET /x HTTP/1.1\r\n");
    CHECK(serialize_request_head(method, head) == errc::invalid_method);
}
