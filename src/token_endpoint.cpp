#include <tokenflight/token_endpoint.hpp>
#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/signing_key.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <charconv>
#include <ctime>

namespace tokenflight {

namespace json = boost::json;
using std::chrono::seconds;

std::string form_urlencode(std::string_view s) {
    static constexpr char hex_digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() + s.size() / 2);
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '*') {
            out += static_cast<char>(c);
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex_digits[c >> 4];
            out += hex_digits[c & 15];
        }
    }
    return out;
}

std::string base64_encode(std::string_view s) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((s.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < s.size(); i += 3) {
        const unsigned n = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
        out += alphabet[n >> 18];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i < s.size()) {
        unsigned n = (unsigned char)s[i] << 16;
        if (i + 1 < s.size()) n |= (unsigned char)s[i + 1] << 8;
        out += alphabet[n >> 18];
        out += alphabet[(n >> 12) & 63];
        out += i + 1 < s.size() ? alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-' || c == '+') v = 62;
        else if (c == '_' || c == '/') v = 63;
        else if (c == '=') break;
        else return std::nullopt;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

namespace {

void append_param(std::string& body, std::string_view name, std::string_view value) {
    if (!body.empty()) body += '&';
    body += form_urlencode(name);
    body += '=';
    body += form_urlencode(value);
}

// A JSON number or a string of decimal digits (Azure AD v1 sends "3599"), as whole seconds.
std::optional<std::int64_t> as_seconds(const json::value& v) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) return v.get_uint64() > INT64_MAX ? std::nullopt : std::optional<std::int64_t>(v.get_uint64());
    if (v.is_double()) {
        const double d = v.get_double();
        if (!(d >= 0 && d < 1e15)) return std::nullopt;
        return static_cast<std::int64_t>(d);
    }
    if (v.is_string()) {
        const auto s = std::string_view(v.get_string());
        std::int64_t n = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
        return n;
    }
    return std::nullopt;
}

std::optional<std::int64_t> jwt_exp(std::string_view token) {
    const auto first = token.find('.');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = token.find('.', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    auto payload = base64_decode(token.substr(first + 1, second - first - 1));
    if (!payload) return std::nullopt;
    error_code ec;
    auto v = json::parse(*payload, ec);
    if (ec || !v.is_object()) return std::nullopt;
    if (auto* exp = v.get_object().if_contains("exp")) return as_seconds(*exp);
    return std::nullopt;
}

constexpr std::int64_t max_lifetime = 10LL * 365 * 24 * 3600; // beyond this a value is nonsense

// Masked whole, then cut: a window cut first (however wide) can end inside a copy of the secret
// that earlier masked copies pulled forward. Bodies are bounded by the transport's body limit.
std::string excerpt(std::string_view body, const redactor& r) {
    std::string out(body);
    r.apply(out);
    out.resize(std::min<std::size_t>(out.size(), 256));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '.';
    return out;
}

// Server-supplied text for messages: masked, cut, and without terminal control characters (an
// ESC in an error_description could rewrite the operator's terminal).
std::string bounded(std::string_view s, const redactor& r, std::size_t limit = 512) {
    std::string out(s);
    r.apply(out);
    out.resize(std::min(out.size(), limit));
    strip_controls(out);
    return out;
}

oauth_errc oauth_code(std::string_view e) {
    for (int v = 1; v < static_cast<int>(oauth_errc::other); ++v)
        if (e == to_string(static_cast<oauth_errc>(v))) return static_cast<oauth_errc>(v);
    return oauth_errc::other;
}

} // namespace

namespace {
// What `method` (automatic already resolved) needs of `creds`.
error_code check_client_auth(const credentials& creds, client_auth method) {
    if (creds.client_id.empty()) return errc::missing_credentials;
    const auto& a = creds.assertion;
    switch (method) {
    case client_auth::private_key_jwt:
        if (!a.key) return errc::missing_credentials;
        if (a.alg && !a.key->supports(*a.alg)) return errc::key_algorithm_mismatch;
        break;
    case client_auth::client_secret_jwt:
        if (creds.client_secret.empty()) return errc::missing_credentials;
        if (a.alg && *a.alg != jws_alg::hs256) return errc::key_algorithm_mismatch;
        // RFC 7518 section 3.2: an HS256 key of at least the hash's size.
        if (creds.client_secret.reveal().size() < 32) return errc::invalid_signing_key;
        break;
    case client_auth::tls_client_auth:
    case client_auth::self_signed_tls_client_auth:
        if (!creds.certificate) return errc::missing_credentials;
        break;
    default:
        if (creds.client_secret.empty()) return errc::missing_credentials;
    }
    if ((method == client_auth::private_key_jwt || method == client_auth::client_secret_jwt) &&
        a.lifetime <= std::chrono::seconds(0))
        return errc::invalid_signing_key; // exp would not follow iat
    return {};
}
} // namespace

boost::system::result<client_auth> effective_client_auth(const credentials& creds) {
    client_auth method = creds.auth;
    if (method == client_auth::automatic && creds.assertion.key) method = client_auth::private_key_jwt;
    if (method == client_auth::automatic && creds.certificate && creds.client_secret.empty())
        method = client_auth::tls_client_auth;
    if (auto ec = check_client_auth(creds, method)) return ec;
    return method;
}

std::string random_jti() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw boost::system::system_error(errc::invalid_signing_key, "RAND_bytes");
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

boost::system::result<secret> make_client_assertion(const credentials& creds, client_auth method,
                                                    std::string_view audience,
                                                    std::chrono::system_clock::time_point now, std::string_view jti) {
    if (method != client_auth::private_key_jwt && method != client_auth::client_secret_jwt)
        return error_code(errc::key_algorithm_mismatch);
    if (auto ec = check_client_auth(creds, method)) return ec; // what `method` needs, not creds.auth
    const auto& opt = creds.assertion;
    const jws_alg alg = method == client_auth::client_secret_jwt ? jws_alg::hs256 : opt.alg.value_or(opt.key->default_alg());

    json::object header;
    header["alg"] = to_string(alg);
    header["typ"] = "JWT";
    if (!opt.kid.empty()) header["kid"] = opt.kid;
    const auto iat = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
    json::object claims;
    claims["iss"] = creds.client_id;
    claims["sub"] = creds.client_id;
    claims["aud"] = audience;
    claims["jti"] = jti;
    claims["iat"] = iat;
    claims["exp"] = iat + opt.lifetime.count();

    std::string input = base64url_encode(json::serialize(header));
    input += '.';
    input += base64url_encode(json::serialize(claims));
    std::string signature;
    if (alg == jws_alg::hs256) {
        signature = hs256_sign(creds.client_secret, input);
    } else {
        auto signed_ = opt.key->sign(alg, input);
        if (!signed_) return signed_.error();
        signature = std::move(*signed_);
    }
    input += '.';
    input += base64url_encode(signature);
    OPENSSL_cleanse(signature.data(), signature.size());
    secret out(input);
    OPENSSL_cleanse(input.data(), input.size());
    return out;
}

http::request make_token_request(const credentials& creds, client_auth method, std::string_view host,
                                 std::string_view target, const secret& client_assertion) {
    http::request req{http::verb::post, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.set(http::field::accept, "application/json");
    // Every buffer that holds the secret (or the assertion) in any form is wiped before it is
    // freed: the encoded secret, the Basic pair and its base64, and the body (reserved whole up
    // front, so that no append reallocates it and leaves a copy behind).
    const bool assertion = method == client_auth::private_key_jwt || method == client_auth::client_secret_jwt;
    std::string encoded_secret = method == client_auth::post ? form_urlencode(creds.client_secret.reveal())
                                 : assertion                 ? form_urlencode(client_assertion.reveal())
                                                             : "";
    std::string rest; // scope and extra parameters: no secret
    if (!creds.scope.empty()) append_param(rest, "scope", creds.scope);
    for (const auto& [name, value] : creds.extra_params) append_param(rest, name, value);
    const std::string id = form_urlencode(creds.client_id);
    static constexpr std::string_view jwt_bearer =
        "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=";
    std::string body;
    body.reserve(64 + jwt_bearer.size() + id.size() + encoded_secret.size() + rest.size());
    body += "grant_type=client_credentials&client_id=";
    body += id;
    const bool mutual_tls = method == client_auth::tls_client_auth || method == client_auth::self_signed_tls_client_auth;
    if (mutual_tls) {
        // RFC 8705 section 2: the certificate in the handshake authenticates; the form names the client.
    } else if (method == client_auth::post || assertion) {
        body += method == client_auth::post ? std::string_view("&client_secret=") : jwt_bearer;
        body += encoded_secret;
        OPENSSL_cleanse(encoded_secret.data(), encoded_secret.size());
    } else {
        std::string secret_part = form_urlencode(creds.client_secret.reveal());
        std::string pair;
        pair.reserve(id.size() + 1 + secret_part.size());
        pair += id;
        pair += ':';
        pair += secret_part;
        std::string b64 = base64_encode(pair);
        std::string value;
        value.reserve(6 + b64.size());
        value += "Basic ";
        value += b64;
        req.set(http::field::authorization, value);
        for (std::string* s : {&secret_part, &pair, &b64, &value}) OPENSSL_cleanse(s->data(), s->size());
    }
    if (!rest.empty()) {
        body += '&';
        body += rest;
    }
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

boost::system::result<token_response>
parse_token_response(unsigned status, std::string_view body, std::chrono::system_clock::time_point now,
                     seconds default_lifetime, const redactor& scrub_secret, diagnostics& diag) {
    diag.http_status = static_cast<int>(status);
    diag.body_excerpt = excerpt(body, scrub_secret);
    const bool ok_status = status >= 200 && status < 300;
    const auto status_error = [&]() -> error_code {
        if (ok_status) return errc::malformed_response;
        if (status >= 500 || status == 429) return errc::server_unavailable;
        return errc::token_endpoint_status;
    };

    // Token responses are small: parse into a stack buffer, no heap allocation for the DOM.
    unsigned char buffer[4096];
    json::monotonic_resource mr(buffer, sizeof buffer);
    error_code ec;
    json::value v = json::parse(body, ec, &mr);
    if (ec || !v.is_object()) return status_error();
    const json::object& o = v.get_object();

    // RFC 6749 section 5.2, also honoured under 200 (some servers do that).
    if (const auto* e = o.if_contains("error"); e && e->is_string()) {
        diag.oauth_error = bounded(e->get_string(), scrub_secret, 128);
        if (const auto* d = o.if_contains("error_description"); d && d->is_string())
            diag.error_description = bounded(d->get_string(), scrub_secret);
        if (const auto* u = o.if_contains("error_uri"); u && u->is_string())
            diag.error_uri = bounded(u->get_string(), scrub_secret);
        // 5xx and 429 are transient whatever the body says: a gateway in trouble may well wrap
        // its outage in an OAuth error object.
        if (status >= 500 || status == 429) return error_code(errc::server_unavailable);
        return error_code(oauth_code(diag.oauth_error));
    }
    if (!ok_status) return status_error();

    token_response r;
    const auto* at = o.if_contains("access_token");
    if (!at || !at->is_string() || at->get_string().empty()) return error_code(errc::missing_access_token);
    // The token goes into a header line of every API request: one CR, LF or NUL would inject a
    // header or a whole second request. Visible ASCII only; no stricter (RFC 6750's b64token),
    // since real providers issue tokens with characters such as '!'.
    if (!http::is_visible_ascii(at->get_string())) return error_code(errc::invalid_token_response);
    r.access_token = at->get_string();

    if (const auto* t = o.if_contains("token_type")) {
        if (!t->is_string()) return error_code(errc::unsupported_token_type);
        if (!http::is_token(t->get_string())) return error_code(errc::invalid_token_response);
        r.token_type = t->get_string();
    } else {
        r.token_type = "Bearer";
    }
    if (const auto* s = o.if_contains("scope"); s && s->is_string()) r.scope = s->get_string();

    const std::int64_t wall_now = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
    if (const auto* ei = o.if_contains("expires_in"); ei && !ei->is_null()) {
        auto n = as_seconds(*ei);
        if (!n || *n <= 0 || *n > max_lifetime) return error_code(errc::bad_expires_in);
        r.lifetime = seconds(*n);
        r.lifetime_from = lifetime_source::expires_in;
    } else if (const auto* eo = o.if_contains("expires_on"); eo && !eo->is_null()) {
        auto n = as_seconds(*eo);
        // Compared before subtracting: an absurd value must not overflow.
        if (!n || *n <= wall_now || *n > wall_now + max_lifetime) return error_code(errc::bad_expires_in);
        r.lifetime = seconds(*n - wall_now);
        r.lifetime_from = lifetime_source::expires_on;
    } else if (auto exp = jwt_exp(r.access_token); exp && *exp > wall_now && *exp <= wall_now + max_lifetime) {
        r.lifetime = seconds(*exp - wall_now);
        r.lifetime_from = lifetime_source::jwt_exp;
    } else {
        r.lifetime = default_lifetime;
        r.lifetime_from = lifetime_source::configured_default;
    }
    if (const auto* ri = o.if_contains("refresh_in"); ri && !ri->is_null()) {
        // Only a hint: a nonsensical value is ignored rather than failing a good token.
        if (auto n = as_seconds(*ri); n && *n > 0 && seconds(*n) < r.lifetime) r.refresh_in = seconds(*n);
    }
    diag.clear();
    return r;
}

std::optional<seconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc() && p == value.data() + value.size()) {
        if (n < 0) return std::nullopt;
        return seconds(std::min<std::int64_t>(n, 24 * 3600));
    }
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    std::tm tm{};
    const std::string copy(value);
    const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0') return std::nullopt;
    // In whole seconds of time_t: a date centuries away must not overflow a nanosecond time_point.
    const std::int64_t when = timegm(&tm);
    const std::int64_t now_s = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
    if (when <= now_s) return seconds(0);
    return seconds(std::min<std::int64_t>(when - now_s, 24 * 3600));
}

} // namespace tokenflight
