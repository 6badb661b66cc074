#include <tokenflight/credentials.hpp>
#include <tokenflight/error.hpp>

#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <ostream>

namespace tokenflight {

namespace {
std::string_view env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string_view(v) : std::string_view();
}
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}
} // namespace

boost::system::result<secret> load_secret_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return error_code(errno ? errno : ENOENT, boost::system::generic_category());
    std::string line;
    std::getline(in, line);
    secret s(trim(line));
    OPENSSL_cleanse(line.data(), line.size());
    if (s.empty()) return error_code(errc::missing_credentials);
    return s;
}

boost::system::result<credentials> credentials::from_env() {
    credentials c;
    c.token_url = std::string(env("TOKENFLIGHT_TOKEN_URL"));
    c.issuer = std::string(env("TOKENFLIGHT_ISSUER"));
    c.client_id = std::string(env("TOKENFLIGHT_CLIENT_ID"));
    c.scope = std::string(env("TOKENFLIGHT_SCOPE"));
    if (auto s = env("TOKENFLIGHT_CLIENT_SECRET"); !s.empty()) {
        c.client_secret = secret(s);
    } else if (auto f = env("TOKENFLIGHT_CLIENT_SECRET_FILE"); !f.empty()) {
        auto loaded = load_secret_file(std::filesystem::path(f));
        if (!loaded) return loaded.error();
        c.client_secret = std::move(*loaded);
    }
    if ((c.token_url.empty() && c.issuer.empty()) || c.client_id.empty() || c.client_secret.empty())
        return error_code(errc::missing_credentials);
    return c;
}

std::string_view to_string(client_auth a) noexcept {
    switch (a) {
    case client_auth::basic: return "client_secret_basic";
    case client_auth::post: return "client_secret_post";
    case client_auth::automatic: return "automatic";
    case client_auth::private_key_jwt: return "private_key_jwt";
    case client_auth::client_secret_jwt: return "client_secret_jwt";
    case client_auth::tls_client_auth: return "tls_client_auth";
    case client_auth::self_signed_tls_client_auth: return "self_signed_tls_client_auth";
    }
    return "unknown";
}

std::ostream& operator<<(std::ostream& os, const credentials& c) {
    os << "credentials{token_url=" << c.token_url;
    if (!c.issuer.empty()) os << ", issuer=" << c.issuer;
    os << ", client_id=" << c.client_id
       << ", client_secret=" << c.client_secret << ", scope=" << c.scope << ", auth=" << to_string(c.auth);
    if (c.assertion.key) os << ", assertion_key=" << *c.assertion.key;
    if (c.assertion.alg) os << ", assertion_alg=" << to_string(*c.assertion.alg);
    if (c.certificate) os << ", certificate=" << c.certificate;
    return os << '}';
}

} // namespace tokenflight
