#include <tokenflight/discovery.hpp>
#include <tokenflight/http/url.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>

namespace tokenflight {

namespace json = boost::json;

namespace {

// What a server said, fit for a message: cut, and without control characters.
std::string shown(std::string_view text) {
    std::string out(text.substr(0, 200));
    strip_controls(out);
    return out;
}

std::vector<std::string> strings_of(const json::object& o, std::string_view name) {
    std::vector<std::string> out;
    if (const auto* v = o.if_contains(name); v && v->is_array())
        for (const auto& e : v->get_array())
            if (e.is_string()) out.emplace_back(e.get_string());
    return out;
}

bool is_http_url(const json::value* v) { return v && v->is_string() && http::parse_url(v->get_string()).has_value(); }

} // namespace

bool server_metadata::supports_auth(std::string_view method) const {
    return std::find(auth_methods.begin(), auth_methods.end(), method) != auth_methods.end();
}

boost::system::result<std::vector<std::string>> discovery_urls(std::string_view issuer) {
    if (auto loc = http::parse_url(issuer); !loc) return loc.error();
    auto u = boost::urls::parse_absolute_uri(issuer);
    if (!u || u->has_query() || u->has_fragment()) return error_code(errc::invalid_url);
    std::string path(u->encoded_path());
    while (!path.empty() && path.back() == '/') path.pop_back();
    const std::string origin(issuer.substr(0, issuer.size() - u->encoded_path().size()));
    return std::vector<std::string>{origin + "/.well-known/oauth-authorization-server" + path,
                                    origin + path + "/.well-known/openid-configuration"};
}

boost::system::result<server_metadata> parse_server_metadata(unsigned status, std::string_view body,
                                                              std::string_view expected_issuer, diagnostics& diag) {
    diag.http_status = status;
    const auto bad = [&](std::string_view why) {
        diag.error_description = std::string(why);
        diag.body_excerpt = shown(body);
        return error_code(errc::bad_metadata);
    };
    if (status < 200 || status > 299) return bad("metadata request answered with a non-2xx status");
    error_code ec;
    const auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return bad("metadata is not a JSON object");
    const auto& o = v.get_object();
    const auto* iss = o.if_contains("issuer");
    if (!iss || !iss->is_string()) return bad("metadata has no issuer");
    if (iss->get_string() != expected_issuer) {
        diag.error_description = "metadata names issuer '" + shown(iss->get_string()) + "', expected '" +
                                 shown(expected_issuer) + "'";
        return error_code(errc::issuer_mismatch);
    }
    const auto* token = o.if_contains("token_endpoint");
    if (!is_http_url(token)) return bad("metadata has no usable token_endpoint");

    server_metadata m;
    m.issuer = std::string(expected_issuer);
    m.token_endpoint = std::string(token->get_string());
    if (const auto* aliases = o.if_contains("mtls_endpoint_aliases"); aliases && aliases->is_object())
        if (const auto* t = aliases->get_object().if_contains("token_endpoint"); is_http_url(t))
            m.mtls_token_endpoint = std::string(t->get_string());
    if (o.contains("token_endpoint_auth_methods_supported"))
        m.auth_methods = strings_of(o, "token_endpoint_auth_methods_supported");
    m.auth_signing_algs = strings_of(o, "token_endpoint_auth_signing_alg_values_supported");
    m.dpop_signing_algs = strings_of(o, "dpop_signing_alg_values_supported");
    return m;
}

client_auth choose_client_auth(const server_metadata& metadata, credentials& creds) {
    if (creds.auth != client_auth::automatic) return creds.auth;
    auto& a = creds.assertion;
    if (a.key && metadata.supports_auth("private_key_jwt")) {
        if (!a.alg && !metadata.auth_signing_algs.empty()) {
            const auto listed = [&](jws_alg alg) {
                const auto& algs = metadata.auth_signing_algs;
                return std::find(algs.begin(), algs.end(), to_string(alg)) != algs.end();
            };
            if (!listed(a.key->default_alg()))
                for (auto alg : {jws_alg::rs256, jws_alg::ps256, jws_alg::es256})
                    if (a.key->supports(alg) && listed(alg)) {
                        a.alg = alg;
                        break;
                    }
        }
        return client_auth::private_key_jwt;
    }
    if (creds.client_secret.empty()) {
        if (creds.certificate && metadata.supports_auth("tls_client_auth")) return client_auth::tls_client_auth;
        if (creds.certificate && metadata.supports_auth("self_signed_tls_client_auth"))
            return client_auth::self_signed_tls_client_auth;
        return client_auth::automatic;
    }
    const bool basic = metadata.supports_auth("client_secret_basic");
    const bool post = metadata.supports_auth("client_secret_post");
    // Both listed: which one this client is registered for is not in the metadata, so Basic is
    // tried first and post once after invalid_client, as automatic does.
    if (basic && post) return client_auth::automatic;
    if (basic) return client_auth::basic;
    if (post) return client_auth::post;
    if (metadata.supports_auth("client_secret_jwt")) return client_auth::client_secret_jwt;
    return client_auth::automatic;
}

} // namespace tokenflight
