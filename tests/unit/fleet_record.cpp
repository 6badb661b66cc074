// The shared token store's record: sealed with AES-256-GCM under an HKDF-SHA256 key, opened only
// with the same key under the same name, and checked like a token endpoint's answer.
#include "fleet/record.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <set>

using namespace tokenflight;
using namespace std::chrono_literals;

namespace {

fleet::shared_token token(std::string value = "tok-0123456789abcdefghij") {
    fleet::shared_token t;
    t.id = fleet::token_id(value);
    t.value = secret(value);
    t.type = "Bearer";
    t.scope = "read write";
    t.expires_at = std::chrono::system_clock::time_point(1'900'000'000'123ms);
    return t;
}

credentials creds(std::string scope = "read") {
    credentials c;
    c.token_url = "https://auth.example/token";
    c.client_id = "svc-a";
    c.client_secret = secret("CLIENT-SECRET-must-not-show");
    c.scope = std::move(scope);
    return c;
}

} // namespace

TEST_CASE("a sealed record opens with its key under its name, and shows nothing of the token") {
    const auto keys = fleet::keys_for("tf:", creds());
    const auto key = fleet::record_key::derive("CLIENT-SECRET-must-not-show", keys.record);
    const auto sealed = fleet::seal(token(), key, keys.record);
    CHECK(sealed.starts_with("tf1"));
    CHECK(sealed.find("tok-0123456789") == std::string::npos);
    CHECK(sealed.find("Bearer") == std::string::npos);

    auto opened = fleet::open(sealed, key, keys.record);
    REQUIRE(opened.has_value());
    CHECK(opened->value.reveal() == "tok-0123456789abcdefghij");
    CHECK(opened->type == "Bearer");
    CHECK(opened->scope == "read write");
    CHECK(opened->expires_at == std::chrono::system_clock::time_point(1'900'000'000'123ms));
    CHECK(opened->id == fleet::token_id("tok-0123456789abcdefghij"));

    // Fresh nonces: the same token never seals to the same bytes.
    CHECK(fleet::seal(token(), key, keys.record) != sealed);
}

TEST_CASE("a record does not open with another key, under another name, or changed in any byte") {
    const auto keys = fleet::keys_for("tf:", creds());
    const auto key = fleet::record_key::derive("secret-a", keys.record);
    const auto sealed = fleet::seal(token(), key, keys.record);
    CHECK_FALSE(fleet::open(sealed, fleet::record_key::derive("secret-b", keys.record), keys.record).has_value());
    // The same material under another name derives another key, and the name is authenticated.
    CHECK_FALSE(fleet::open(sealed, fleet::record_key::derive("secret-a", keys.lease), keys.record).has_value());
    CHECK_FALSE(fleet::open(sealed, key, keys.lease).has_value());
    for (std::size_t i = 0; i < sealed.size(); ++i) {
        std::string changed = sealed;
        changed[i] = static_cast<char>(changed[i] ^ 0x01);
        INFO("byte " << i);
        CHECK(fleet::open(changed, key, keys.record).error() == errc::malformed_response);
    }
    for (std::size_t n = 0; n < sealed.size(); n += 7)
        CHECK_FALSE(fleet::open(sealed.substr(0, n), key, keys.record).has_value());
    CHECK_FALSE(fleet::open("", key, keys.record).has_value());
    CHECK_FALSE(fleet::open(sealed + "x", key, keys.record).has_value());
}

TEST_CASE("an authentic record is still checked: a token that could not be a header does not open") {
    const auto keys = fleet::keys_for("tf:", creds());
    const auto key = fleet::record_key::derive("k", keys.record);
    for (const std::string& bad : {std::string("tok\r\nX-Injected: 1"), std::string("tok en"), std::string("tok\0", 4)}) {
        auto t = token(bad);
        CHECK_FALSE(fleet::open(fleet::seal(t, key, keys.record), key, keys.record).has_value());
    }
    auto wrong_id = token();
    wrong_id.id = fleet::token_id("another token");
    CHECK_FALSE(fleet::open(fleet::seal(wrong_id, key, keys.record), key, keys.record).has_value());
    auto bad_type = token();
    bad_type.type = "Bea rer";
    CHECK_FALSE(fleet::open(fleet::seal(bad_type, key, keys.record), key, keys.record).has_value());
}

TEST_CASE("token ids: 22 base64url characters, one per token, nothing of the token in them") {
    const auto a = fleet::token_id("token-a"), b = fleet::token_id("token-b");
    CHECK(a.size() == 22);
    CHECK(a != b);
    CHECK(a == fleet::token_id("token-a"));
    CHECK(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
    // SHA-256("abc") starts ba7816bf8f01cfea414140de5dae2223: the id is its first 16 bytes.
    CHECK(fleet::token_id("abc") == "ungWv48Bz-pBQUDeXa4iIw");
}

TEST_CASE("key names: one set per token URL, client and scope, never named after a secret") {
    const auto a = fleet::keys_for("tf:", creds("read"));
    CHECK(a.record.starts_with("tf:{"));
    CHECK(a.record.ends_with("}:record"));
    CHECK(a.lease.ends_with("}:lease"));
    CHECK(a.channel.ends_with("}:events"));
    CHECK(a.record.substr(0, a.record.size() - 6) == a.lease.substr(0, a.lease.size() - 5)); // one hash tag
    std::set<std::string> names{a.record};
    names.insert(fleet::keys_for("tf:", creds("write")).record);
    auto other_client = creds("read");
    other_client.client_id = "svc-b";
    names.insert(fleet::keys_for("tf:", other_client).record);
    auto other_server = creds("read");
    other_server.token_url = "https://auth2.example/token";
    names.insert(fleet::keys_for("tf:", other_server).record);
    CHECK(names.size() == 4);
    auto other_secret = creds("read");
    other_secret.client_secret = secret("another");
    CHECK(fleet::keys_for("tf:", other_secret).record == a.record);
    CHECK(a.record.find("svc-a") == std::string::npos);
    CHECK(a.record.find("SECRET") == std::string::npos);
}

TEST_CASE("the record key is HKDF-SHA256 with the fixed salt and the record's name as info") {
    // Computed independently (Python's hmac and hashlib, RFC 5869's two steps).
    const auto k = fleet::record_key::derive("material", "name");
    static constexpr unsigned char expected[] = {
        0x87, 0x32, 0x42, 0x40, 0xc8, 0x31, 0x91, 0xba, 0x21, 0x94, 0x79, 0x3e, 0x6d, 0xa2, 0x22, 0x78,
        0x7f, 0x38, 0x8e, 0x74, 0xa2, 0x96, 0x7f, 0xb4, 0x23, 0x1b, 0xa9, 0x73, 0xf6, 0xfe, 0xfd, 0xf0};
    CHECK(std::equal(k.bytes().begin(), k.bytes().end(), std::begin(expected), std::end(expected)));
    CHECK(fleet::record_key::derive("material", "other").bytes() != k.bytes());
}
