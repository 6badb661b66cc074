#include <tokenflight/token_endpoint.hpp>

#include <doctest/doctest.h>

using namespace tokenflight;
using namespace std::chrono_literals;

namespace {
credentials creds(client_auth a = client_auth::basic) {
    credentials c;
    c.token_url = "https://auth.example/oauth2/token";
    c.client_id = "MY_CLIENT_ID";
    c.client_secret = secret("MY_CLIENT_SECRET");
    c.auth = a;
    return c;
}
const auto wall_now = std::chrono::system_clock::from_time_t(1'700'000'000);
const secret the_secret("MY_CLIENT_SECRET");

boost::system::result<token_response> parse(unsigned status, std::string_view body, diagnostics& d) {
    return parse_token_response(status, body, wall_now, 300s, the_secret, d);
}

std::string b64url(std::string_view s) {
    auto b = base64_encode(s);
    for (auto& c : b) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    while (!b.empty() && b.back() == '=') b.pop_back();
    return b;
}
} // namespace

TEST_CASE("the token request is built as the provider guide builds it") {
    auto req = make_token_request(creds(), client_auth::basic, "auth.example", "/oauth2/token");
    CHECK(req.method() == http::verb::post);
    CHECK(req.target() == "/oauth2/token");
    CHECK(req[http::field::content_type] == "application/x-www-form-urlencoded");
    CHECK(req.body() == "grant_type=client_credentials&client_id=MY_CLIENT_ID");
    CHECK(req[http::field::authorization] == "Basic " + base64_encode("MY_CLIENT_ID:MY_CLIENT_SECRET"));
    CHECK(req[http::field::content_length] == std::to_string(req.body().size()));
}

TEST_CASE("Basic credentials are form-urlencoded before base64 (RFC 6749 section 2.3.1)") {
    auto c = creds();
    c.client_id = "id:with colon";
    c.client_secret = secret("p@ss&word+/");
    auto req = make_token_request(c, client_auth::basic, "h", "/t");
    CHECK(req[http::field::authorization] == "Basic " + base64_encode("id%3Awith+colon:p%40ss%26word%2B%2F"));
}

TEST_CASE("client_secret_post puts the secret in the body, not in a header") {
    auto c = creds();
    c.scope = "read write";
    c.extra_params = {{"audience", "https://api.example/"}};
    auto req = make_token_request(c, client_auth::post, "h", "/t");
    CHECK(req.find(http::field::authorization) == req.end());
    CHECK(req.body() == "grant_type=client_credentials&client_id=MY_CLIENT_ID&client_secret=MY_CLIENT_SECRET"
                        "&scope=read+write&audience=https%3A%2F%2Fapi.example%2F");
}

TEST_CASE("base64 encodes with padding") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64 decodes both alphabets, with or without padding") {
    for (std::string_view v : {"", "f", "fo", "foo", "foobar", "id:s\xff\xfe?>"}) {
        CAPTURE(v);
        CHECK(base64_decode(base64_encode(v)) == std::string(v));
    }
    CHECK(base64_decode("-_-_") == base64_decode("+/+/"));
    CHECK(base64_decode("Zm9v") == "foo");
    CHECK_FALSE(base64_decode("Zm9v!").has_value());
}

TEST_CASE("a section 5.1 response parses; expires_in as number or numeric string") {
    diagnostics d;
    auto r = parse(200, R"({"access_token":"abc","token_type":"Bearer","expires_in":3600,"scope":"read"})", d);
    REQUIRE(r.has_value());
    CHECK(r->access_token == "abc");
    CHECK(r->token_type == "Bearer");
    CHECK(r->scope == "read");
    CHECK(r->lifetime == 3600s);
    CHECK(r->lifetime_from == lifetime_source::expires_in);

    auto azure = parse(200, R"({"access_token":"abc","token_type":"Bearer","expires_in":"3599"})", d);
    REQUIRE(azure.has_value());
    CHECK(azure->lifetime == 3599s);

    auto no_type = parse(200, R"({"access_token":"abc","expires_in":60})", d);
    REQUIRE(no_type.has_value());
    CHECK(no_type->token_type == "Bearer");
}

TEST_CASE("without expires_in: expires_on, then the JWT exp claim, then the default") {
    diagnostics d;
    auto on = parse(200, R"({"access_token":"abc","expires_on":"1700000600"})", d);
    REQUIRE(on.has_value());
    CHECK(on->lifetime == 600s);
    CHECK(on->lifetime_from == lifetime_source::expires_on);

    const std::string jwt = b64url(R"({"alg":"none"})") + "." + b64url(R"({"sub":"x","exp":1700000900})") + ".sig";
    auto j = parse(200, R"({"access_token":")" + jwt + R"("})", d);
    REQUIRE(j.has_value());
    CHECK(j->lifetime == 900s);
    CHECK(j->lifetime_from == lifetime_source::jwt_exp);

    auto def = parse(200, R"({"access_token":"opaque"})", d);
    REQUIRE(def.has_value());
    CHECK(def->lifetime == 300s);
    CHECK(def->lifetime_from == lifetime_source::configured_default);
}

TEST_CASE("a refresh_in hint is kept when it makes sense") {
    diagnostics d;
    auto r = parse(200, R"({"access_token":"a","expires_in":3600,"refresh_in":1800})", d);
    REQUIRE(r.has_value());
    REQUIRE(r->refresh_in.has_value());
    CHECK(*r->refresh_in == 1800s);
    auto silly = parse(200, R"({"access_token":"a","expires_in":60,"refresh_in":7200})", d);
    REQUIRE(silly.has_value());
    CHECK_FALSE(silly->refresh_in.has_value());
}

TEST_CASE("section 5.2 errors map to typed errors, also under HTTP 200") {
    diagnostics d;
    auto r = parse(401, R"({"error":"invalid_client","error_description":"Client authentication failed","error_uri":"https://x/e"})", d);
    REQUIRE(r.has_error());
    CHECK(r.error() == oauth_errc::invalid_client);
    CHECK(d.http_status == 401);
    CHECK(d.oauth_error == "invalid_client");
    CHECK(d.error_description == "Client authentication failed");
    CHECK(d.error_uri == "https://x/e");

    CHECK(parse(400, R"({"error":"invalid_scope"})", d).error() == oauth_errc::invalid_scope);
    CHECK(parse(400, R"({"error":"invalid_grant"})", d).error() == oauth_errc::invalid_grant);
    CHECK(parse(400, R"({"error":"unauthorized_client"})", d).error() == oauth_errc::unauthorized_client);
    CHECK(parse(400, R"({"error":"unsupported_grant_type"})", d).error() == oauth_errc::unsupported_grant_type);
    CHECK(parse(400, R"({"error":"invalid_request"})", d).error() == oauth_errc::invalid_request);
    CHECK(parse(400, R"({"error":"slow_down"})", d).error() == oauth_errc::other);
    CHECK(d.oauth_error == "slow_down");

    diagnostics d200;
    auto e200 = parse(200, R"({"error":"invalid_request","error_description":"sent with 200"})", d200);
    CHECK(e200.error() == oauth_errc::invalid_request);
    CHECK(d200.error_description == "sent with 200");
}

TEST_CASE("bodies that are not a token give clear errors") {
    diagnostics d;
    auto html = parse(200, "<html><body>Bad gateway</body></html>", d);
    CHECK(html.error() == errc::malformed_response);
    CHECK(d.body_excerpt.find("Bad gateway") != std::string::npos);
    CHECK(parse(502, "<html>Bad gateway</html>", d).error() == errc::server_unavailable);
    CHECK(parse(429, "slow down", d).error() == errc::server_unavailable);
    CHECK(parse(404, "not found", d).error() == errc::token_endpoint_status);
    CHECK(parse(200, R"({"access_token":"abc","tok)", d).error() == errc::malformed_response);
    CHECK(parse(200, R"(["access_token"])", d).error() == errc::malformed_response);
    CHECK(parse(200, R"({"token_type":"Bearer"})", d).error() == errc::missing_access_token);
    CHECK(parse(200, R"({"access_token":42})", d).error() == errc::missing_access_token);
    CHECK(parse(200, R"({"access_token":""})", d).error() == errc::missing_access_token);
    CHECK(parse(200, R"({"access_token":"a","expires_in":"abc"})", d).error() == errc::bad_expires_in);
    CHECK(parse(200, R"({"access_token":"a","expires_in":-5})", d).error() == errc::bad_expires_in);
    CHECK(parse(200, R"({"access_token":"a","expires_in":0})", d).error() == errc::bad_expires_in);
    CHECK(parse(200, R"({"access_token":"a","expires_in":{}})", d).error() == errc::bad_expires_in);
    CHECK(parse(200, R"({"access_token":"a","token_type":7})", d).error() == errc::unsupported_token_type);
    const std::string big(1024 * 1024, 'x');
    CHECK(parse(200, big, d).error() == errc::malformed_response);
    CHECK(d.body_excerpt.size() <= 256);
}

TEST_CASE("a server that echoes the secret does not get it into diagnostics") {
    diagnostics d;
    auto r = parse(400, R"({"error":"invalid_request","error_description":"bad client_secret MY_CLIENT_SECRET"})", d);
    CHECK(r.error() == oauth_errc::invalid_request);
    CHECK(d.error_description.find("MY_CLIENT_SECRET") == std::string::npos);
    CHECK(d.body_excerpt.find("MY_CLIENT_SECRET") == std::string::npos);
    CHECK(d.to_string().find("MY_CLIENT_SECRET") == std::string::npos);
}

TEST_CASE("Retry-After as seconds or HTTP-date") {
    CHECK(parse_retry_after("120", wall_now) == 120s);
    CHECK(parse_retry_after(" 0 ", wall_now) == 0s);
    CHECK_FALSE(parse_retry_after("soon", wall_now).has_value());
    CHECK_FALSE(parse_retry_after("-3", wall_now).has_value());
    // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT
    CHECK(parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", wall_now) == 30s);
    CHECK(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", wall_now) == 0s);
}

// Found by fuzz/token_response and fuzz/retry_after (inputs kept under fuzz/regressions).
TEST_CASE("a secret straddling the excerpt or description bound is still masked") {
    diagnostics d;
    std::string body = R"({"error":"invalid_request","error_description":")" + std::string(490, 'x') +
                       "MY_CLIENT_SECRET" + R"("})";
    auto r = parse(400, body, d);
    CHECK(r.error() == oauth_errc::invalid_request);
    CHECK(d.error_description.find("MY_CLI") == std::string::npos);
    std::string html(250, 'h');
    html += "MY_CLIENT_SECRET and more";
    CHECK(parse(502, html, d).error() == errc::server_unavailable);
    CHECK(d.body_excerpt.find("MY_CLI") == std::string::npos);
    CHECK(d.body_excerpt.size() <= 256);
}

TEST_CASE("absurd expiry values are refused without overflow") {
    diagnostics d;
    CHECK(parse(200, R"({"access_token":"a","expires_on":-9223372036854775808})", d).error() == errc::bad_expires_in);
    CHECK(parse(200, R"({"access_token":"a","expires_on":9223372036854775807})", d).error() == errc::bad_expires_in);
    const std::string jwt = b64url(R"({"alg":"none"})") + "." + b64url(R"({"exp":-9223372036854775808})") + ".s";
    auto j = parse(200, R"({"access_token":")" + jwt + R"("})", d);
    REQUIRE(j.has_value());
    CHECK(j->lifetime_from == lifetime_source::configured_default);
}

TEST_CASE("Retry-After dates centuries away do not overflow") {
    CHECK(parse_retry_after("Mon, 01 Jan 1700 00:00:00 GMT", wall_now) == 0s);
    CHECK(parse_retry_after("Fri, 01 Jan 2300 00:00:00 GMT", wall_now) == 86400s);
}

TEST_CASE("earlier masked copies cannot pull a later secret into the excerpt") {
    diagnostics d;
    const std::string body = "MY_CLIENT_SECRETMY_CLIENT_SECRET" + std::string(230, 'x') + "MY_CLIENT_SECRET";
    CHECK(parse(503, body, d).error() == errc::server_unavailable);
    CHECK(d.body_excerpt.find("MY_CLIENT") == std::string::npos);
}

TEST_CASE("an access_token or token_type that cannot go into a header is a typed, permanent error") {
    diagnostics d;
    const char* bad_tokens[] = {
        R"({"access_token":"abc\r\nX-Evil: 1"})",
        R"({"access_token":"abc\r\nContent-Length: 0\r\n\r\nGET /other HTTP/1.1"})",
        R"({"access_token":"a\u0000b"})",
        R"({"access_token":"a b"})",
        R"({"access_token":"a\tb"})",
        R"({"access_token":"a\u007f"})",
        R"({"access_token":"caf\u00e9"})",
        R"({"access_token":"abc","token_type":"Bearer\r\nX-Evil: 1"})",
        R"({"access_token":"abc","token_type":"Bearer x"})",
        R"({"access_token":"abc","token_type":""})",
    };
    for (const char* body : bad_tokens) {
        CAPTURE(body);
        auto r = parse(200, body, d);
        REQUIRE(r.has_error());
        CHECK(r.error() == errc::invalid_token_response);
        CHECK_FALSE(is_transient(r.error()));
    }
    auto ok = parse(200, R"({"access_token":"a!b#c$~{}|`^","token_type":"bearer"})", d);
    REQUIRE(ok.has_value());
    CHECK(ok->access_token == "a!b#c$~{}|`^");
}

TEST_CASE("5xx and 429 are transient whatever the body; temporarily_unavailable and server_error whatever the status") {
    diagnostics d;
    auto r = parse(503, R"({"error":"temporarily_unavailable","error_description":"maintenance"})", d);
    CHECK(r.error() == errc::server_unavailable);
    CHECK(is_transient(r.error()));
    CHECK(d.oauth_error == "temporarily_unavailable"); // what the server said is kept
    CHECK(d.error_description == "maintenance");
    CHECK(parse(500, R"({"error":"invalid_client"})", d).error() == errc::server_unavailable);
    CHECK(parse(429, R"({"error":"slow_down"})", d).error() == errc::server_unavailable);
    auto t = parse(400, R"({"error":"temporarily_unavailable"})", d);
    CHECK(t.error() == oauth_errc::temporarily_unavailable);
    CHECK(is_transient(t.error()));
    CHECK(t.error() == condition::oauth_error);
    auto s = parse(200, R"({"error":"server_error"})", d);
    CHECK(s.error() == oauth_errc::server_error);
    CHECK(is_transient(s.error()));
    CHECK_FALSE(is_transient(parse(400, R"({"error":"invalid_client"})", d).error()));
}

TEST_CASE("server texts lose their terminal control characters") {
    diagnostics d;
    auto r = parse(400, "{\"error\":\"invalid_request\",\"error_description\":\"bad\\u001b[2J\\u0007\\r\\nX\\u009b31m\"}", d);
    CHECK(r.error() == oauth_errc::invalid_request);
    for (char c : d.error_description) {
        CAPTURE(static_cast<int>(static_cast<unsigned char>(c)));
        CHECK((static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) != 0x7f));
    }
    CHECK(d.error_description.find("\xc2\x9b") == std::string::npos); // C1 CSI, UTF-8 encoded
    CHECK(d.error_description.rfind("bad?[2J", 0) == 0);
}

TEST_CASE("an echoed Basic credential is masked in diagnostics") {
    const redactor r(the_secret, "MY_CLIENT_ID");
    const auto basic = base64_encode(form_urlencode("MY_CLIENT_ID") + ':' + "MY_CLIENT_SECRET");
    diagnostics d;
    auto res = parse_token_response(400, R"({"error":"invalid_request","error_description":"got Basic )" + basic + R"("})",
                                    wall_now, 300s, r, d);
    CHECK(res.error() == oauth_errc::invalid_request);
    CHECK(d.error_description.find(basic.substr(0, 12)) == std::string::npos);
    CHECK(d.body_excerpt.find(basic.substr(0, 12)) == std::string::npos);
    CHECK(d.error_description == "got Basic ***");
}
