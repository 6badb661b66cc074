#include "record.hpp"

#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/signing_key.hpp> // base64url_encode

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>
#include <stdexcept>

namespace tokenflight::fleet {

namespace {

constexpr std::string_view magic = "tf1";
constexpr std::size_t nonce_size = 12, tag_size = 16;
constexpr std::string_view hkdf_salt = "tokenflight shared token store v1";


struct cipher_free {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_free>;

struct pkey_ctx_free {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string sha256_hex(std::string_view s) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(u8(s), s.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : digest) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

boost::system::result<shared_token> bad_record() { return make_error_code(errc::malformed_response); }

} // namespace

record_key record_key::derive(std::string_view material, std::string_view store_key) {
    record_key k;
    std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> c(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
    std::size_t length = size;
    const bool ok = c && EVP_PKEY_derive_init(c.get()) == 1 && EVP_PKEY_CTX_set_hkdf_md(c.get(), EVP_sha256()) == 1 &&
                    EVP_PKEY_CTX_set1_hkdf_salt(c.get(), u8(hkdf_salt), static_cast<int>(hkdf_salt.size())) == 1 &&
                    EVP_PKEY_CTX_set1_hkdf_key(c.get(), u8(material), static_cast<int>(material.size())) == 1 &&
                    EVP_PKEY_CTX_add1_hkdf_info(c.get(), u8(store_key), static_cast<int>(store_key.size())) == 1 &&
                    EVP_PKEY_derive(c.get(), k.bytes_.data(), &length) == 1 && length == size;
    if (!ok) throw std::runtime_error("HKDF-SHA256 failed"); // OpenSSL out of memory: nothing to do
    return k;
}

record_key::~record_key() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

std::string token_id(std::string_view token) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(u8(token), token.size(), digest);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), 16));
}

store_keys keys_for(std::string_view prefix, const credentials& creds) {
    // Unit separators keep ("ab", "c") and ("a", "bc") apart.
    std::string who = (creds.token_url.empty() ? creds.issuer : creds.token_url) + '\x1f' + creds.client_id + '\x1f' +
                      creds.scope;
    // Extra token request parameters (audience, resource) make another token.
    for (const auto& [name, value] : creds.extra_params) who += '\x1f' + name + '=' + value;
    const std::string base = std::string(prefix) + '{' + sha256_hex(who).substr(0, 32) + "}:";
    return {base + "record", base + "lease", base + "events"};
}

bool fits_in_record(const shared_token& token) {
    // The JSON around the fields, and every byte escaped at worst (\u00XX: 6 bytes).
    const std::size_t fields = token.value.reveal().size() + token.type.size() + token.scope.size() + token.id.size();
    return 6 * fields + 256 <= max_record_plaintext;
}

std::string seal(const shared_token& token, const record_key& key, std::string_view store_key) {
    boost::json::object o;
    o["v"] = 1;
    o["token"] = token.value.reveal();
    o["type"] = token.type;
    o["scope"] = token.scope;
    o["exp_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(token.expires_at.time_since_epoch()).count();
    o["id"] = token.id;
    o["iat_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(token.issued_at.time_since_epoch()).count();
    std::string plain = boost::json::serialize(o);
    if (plain.size() > max_record_plaintext) {
        OPENSSL_cleanse(plain.data(), plain.size());
        throw std::length_error("shared token record too large"); // callers check fits_in_record() first
    }

    std::string out(magic);
    unsigned char nonce[nonce_size];
    if (RAND_bytes(nonce, sizeof nonce) != 1) throw std::runtime_error("RAND_bytes failed");
    out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
    const std::size_t body_at = out.size();
    out.resize(body_at + plain.size() + tag_size);
    auto* body = reinterpret_cast<unsigned char*>(out.data() + body_at);

    cipher_ctx c(EVP_CIPHER_CTX_new());
    int n = 0, tail = 0;
    const bool ok = c && EVP_EncryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_size, nullptr) == 1 &&
                    EVP_EncryptInit_ex(c.get(), nullptr, nullptr, key.bytes().data(), nonce) == 1 &&
                    EVP_EncryptUpdate(c.get(), nullptr, &n, u8(store_key), static_cast<int>(store_key.size())) == 1 &&
                    EVP_EncryptUpdate(c.get(), body, &n, u8(plain), static_cast<int>(plain.size())) == 1 &&
                    EVP_EncryptFinal_ex(c.get(), body + n, &tail) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, tag_size, body + plain.size()) == 1;
    OPENSSL_cleanse(plain.data(), plain.size());
    if (!ok) throw std::runtime_error("AES-256-GCM failed");
    return out;
}

boost::system::result<shared_token> open(std::string_view sealed, const record_key& key, std::string_view store_key) {
    if (sealed.size() < magic.size() + nonce_size + tag_size || !sealed.starts_with(magic)) return bad_record();
    const std::string_view nonce = sealed.substr(magic.size(), nonce_size);
    const std::string_view body = sealed.substr(magic.size() + nonce_size, sealed.size() - magic.size() - nonce_size - tag_size);
    std::string tag(sealed.substr(sealed.size() - tag_size));
    if (body.size() > max_record_plaintext) return bad_record();

    std::string plain(body.size(), '\0');
    cipher_ctx c(EVP_CIPHER_CTX_new());
    int n = 0, tail = 0;
    const bool ok = c && EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_size, nullptr) == 1 &&
                    EVP_DecryptInit_ex(c.get(), nullptr, nullptr, key.bytes().data(), u8(nonce)) == 1 &&
                    EVP_DecryptUpdate(c.get(), nullptr, &n, u8(store_key), static_cast<int>(store_key.size())) == 1 &&
                    EVP_DecryptUpdate(c.get(), reinterpret_cast<unsigned char*>(plain.data()), &n, u8(body),
                                      static_cast<int>(body.size())) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, tag_size, tag.data()) == 1 &&
                    EVP_DecryptFinal_ex(c.get(), reinterpret_cast<unsigned char*>(plain.data()) + n, &tail) == 1;
    struct wipe {
        std::string& s;
        ~wipe() { OPENSSL_cleanse(s.data(), s.size()); }
    } wiped{plain};
    if (!ok) return bad_record();
    // Authentic, so written by a holder of the key; still checked as any input is.
    return parse_record(plain);
}

boost::system::result<shared_token> parse_record(std::string_view plain) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(plain, ec);
    if (ec || !v.is_object()) return bad_record();
    const auto& o = v.as_object();
    const auto* version = o.if_contains("v");
    const auto* value = o.if_contains("token");
    const auto* type = o.if_contains("type");
    const auto* scope = o.if_contains("scope");
    const auto* exp = o.if_contains("exp_ms");
    const auto* id = o.if_contains("id");
    if (!version || !version->is_int64() || version->as_int64() != 1 || !value || !value->is_string() || !type ||
        !type->is_string() || !scope || !scope->is_string() || !exp || !exp->is_int64() || !id || !id->is_string())
        return bad_record();
    // Within what the system clock holds in nanoseconds (until 2262): no overflow below.
    if (exp->as_int64() < 0 || exp->as_int64() > 9'000'000'000'000) return bad_record();
    const std::string_view token = value->as_string();
    // The token endpoint's rules (token_endpoint.cpp): the token becomes a header line, so
    // visible ASCII only, and the type an RFC 9110 token.
    if (!http::is_visible_ascii(token) || !http::is_token(type->as_string()) || id->as_string() != token_id(token))
        return bad_record();
    shared_token t;
    t.value = secret(token);
    t.type = std::string(type->as_string());
    t.scope = std::string(scope->as_string());
    t.expires_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(exp->as_int64()));
    t.id = std::string(id->as_string());
    // Optional (records before it had none): from the epoch up to the expiry.
    if (const auto* iat = o.if_contains("iat_ms")) {
        if (!iat->is_int64() || iat->as_int64() < 0 || iat->as_int64() > exp->as_int64()) return bad_record();
        t.issued_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(iat->as_int64()));
    }
    return t;
}

} // namespace tokenflight::fleet
