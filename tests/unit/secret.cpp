#include <tokenflight/secret.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/token_endpoint.hpp>
#include <tokenflight/credentials.hpp>

#include <doctest/doctest.h>

#include <sstream>

using namespace tokenflight;

TEST_CASE("a secret streams as *** and reveals its value only on request") {
    secret s("s3cr3t-value");
    std::ostringstream os;
    os << s;
    CHECK(os.str() == "***");
    CHECK(s.reveal() == "s3cr3t-value");
    CHECK_FALSE(s.empty());
}

TEST_CASE("copies and moves keep the value; a moved-from secret is empty") {
    secret a("short");
    secret b = a;
    CHECK(b == a);
    secret c = std::move(a);
    CHECK(c.reveal() == "short");
    CHECK(a.empty());
    secret d("other");
    d = std::move(c);
    CHECK(d.reveal() == "short");
    CHECK(c.empty());
    d.clear();
    CHECK(d.empty());
    CHECK_FALSE(d == b);
}

TEST_CASE("credentials print without their secret") {
    credentials c;
    c.token_url = "https://auth.example/token";
    c.client_id = "my-client";
    c.client_secret = secret("TOPSECRET-123");
    std::ostringstream os;
    os << c;
    CHECK(os.str().find("TOPSECRET") == std::string::npos);
    CHECK(os.str().find("my-client") != std::string::npos);
    CHECK(os.str().find("***") != std::string::npos);
}

TEST_CASE("scrub masks every occurrence of the secret") {
    std::string text = "echo: client_secret=abc123&x=abc123";
    scrub(text, secret("abc123"));
    CHECK(text == "echo: client_secret=***&x=***");
    std::string untouched = "nothing here";
    scrub(untouched, secret());
    CHECK(untouched == "nothing here");
}

TEST_CASE("scrub also masks the forms a server echoes a secret in") {
    const secret s("s3cr/t+x y");
    std::string form = "client_secret=s3cr%2Ft%2Bx+y&x=1 lower s3cr%2ft%2bx+y";
    scrub(form, s);
    CHECK(form == "client_secret=***&x=1 lower ***");
    std::string json = R"({"echo":"s3cr\/t+x y"})";
    scrub(json, s);
    CHECK(json == R"({"echo":"***"})");
}

TEST_CASE("a redactor masks the secret's base64 and the Basic credential in both encodings") {
    const secret s("p@ss:w/rd+x");
    const redactor r(s, "my id");
    const std::string forms[] = {
        "p@ss:w/rd+x",
        "p%40ss%3Aw%2Frd%2Bx",
        "p%40ss%3aw%2frd%2bx",
        "p@ss:w\\/rd+x",
        base64_encode("p@ss:w/rd+x"),
        base64_encode("my+id:p%40ss%3Aw%2Frd%2Bx"), // as tokenflight sends it (RFC 6749 2.3.1)
        base64_encode("my id:p@ss:w/rd+x"),         // as other clients do
    };
    // Base64 holds '+', '/' and '=', which change when a server form-encodes or JSON-escapes it.
    const std::string b64 = base64_encode("my+id:p%40ss%3Aw%2Frd%2Bx");
    std::string escaped, encoded;
    for (char c : b64) {
        if (c == '/') escaped += '\\';
        escaped += c;
        if (c == '+') encoded += "%2B";
        else if (c == '/') encoded += "%2F";
        else if (c == '=') encoded += "%3D";
        else encoded += c;
    }
    for (const auto& f : {escaped, encoded}) {
        CAPTURE(f);
        std::string text = "echo: Basic " + f + " end";
        r.apply(text);
        CHECK(text == "echo: Basic *** end");
    }
    for (const auto& f : forms) {
        CAPTURE(f);
        std::string text = "echo: Basic " + f + " end";
        r.apply(text);
        CHECK(text == "echo: Basic *** end");
    }
    std::string unpadded = "x";
    const std::string padded = base64_encode("p@ss:w/rd+x");
    unpadded.append(padded, 0, padded.find('='));
    r.apply(unpadded);
    CHECK(unpadded == "x***");
    std::string plain = "no secret here";
    r.apply(plain);
    CHECK(plain == "no secret here");
    std::string via_scrub = "b64 " + base64_encode("p@ss:w/rd+x");
    scrub(via_scrub, s);
    CHECK(via_scrub.find(base64_encode("p@ss:w/rd+x").substr(0, 8)) == std::string::npos);
}

TEST_CASE("strip_controls leaves text inert on a terminal") {
    std::string t = "ok \x1b[31mred\x07\r\n\x7f caf\xc3\xa9 \xc2\x9b" "31m \xff\xfe end";
    strip_controls(t);
    CHECK(t == "ok ?[31mred???? caf\xc3\xa9 ??31m ?? end");
}
