#include <tokenflight/http/proxy.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

#include <openssl/crypto.h>

#include <charconv>

namespace tokenflight::http {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::optional<std::uint16_t> port_of(std::string_view s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

// One NO_PROXY entry, without its port, against a host.
bool entry_names(std::string_view entry, std::string_view host) {
    if (entry.size() > 1 && entry.front() == '[' && entry.back() == ']') entry = entry.substr(1, entry.size() - 2);
    error_code not_ip;
    const auto address = boost::asio::ip::make_address(host, not_ip);
    if (const auto slash = entry.find('/'); slash != std::string_view::npos) { // CIDR
        if (not_ip) return false;
        error_code bad;
        if (address.is_v4()) {
            const auto net = boost::asio::ip::make_network_v4(entry, bad);
            return !bad && boost::asio::ip::make_network_v4(address.to_v4(), net.prefix_length()).network() == net.network();
        }
        const auto net = boost::asio::ip::make_network_v6(entry, bad);
        return !bad && boost::asio::ip::make_network_v6(address.to_v6(), net.prefix_length()).network() == net.network();
    }
    if (!not_ip) { // the host is an address: only an equal address names it
        error_code bad;
        const auto other = boost::asio::ip::make_address(entry, bad);
        return !bad && other == address;
    }
    if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
    if (entry.empty()) return false;
    if (boost::beast::iequals(entry, host)) return true;
    return host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
           boost::beast::iequals(host.substr(host.size() - entry.size()), entry);
}

std::string_view env_value(const std::function<const char*(const char*)>& getenv, const char* lower,
                           const char* upper) {
    for (const char* name : {lower, upper})
        if (const char* v = getenv(name); v && *v) return v;
    return {};
}

} // namespace

boost::system::result<proxy_route> parse_proxy_url(std::string_view url) {
    std::string with_scheme;
    if (url.find("://") == std::string_view::npos) {
        with_scheme = "http://";
        with_scheme += url;
        url = with_scheme;
    }
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u || u->scheme() != "http" || !u->has_authority() || u->host().empty())
        return error_code(errc::invalid_proxy);
    const auto path = u->encoded_path();
    if ((!path.empty() && path != "/") || u->has_query() || u->has_fragment()) return error_code(errc::invalid_proxy);
    proxy_route r;
    r.proxy.tls = false;
    r.proxy.host = u->host_type() == boost::urls::host_type::ipv6 ? std::string(u->encoded_host_address())
                                                                  : std::string(u->host());
    if (!r.proxy.host.empty() && r.proxy.host.front() == '[') r.proxy.host = r.proxy.host.substr(1, r.proxy.host.size() - 2);
    if (u->has_port()) {
        const auto p = port_of(u->port());
        if (!p) return error_code(errc::invalid_proxy);
        r.proxy.port = *p;
    } else {
        r.proxy.port = 80;
    }
    if (u->has_userinfo()) {
        // RFC 9110 section 11.7.1 with Basic (RFC 7617): the decoded user and password.
        std::string pair = u->user();
        pair += ':';
        std::string password = u->password();
        pair += password;
        std::string b64 = base64_encode(pair);
        std::string value = "Basic " + b64;
        r.authorization = secret(value);
        for (std::string* s : {&pair, &password, &b64, &value}) OPENSSL_cleanse(s->data(), s->size());
    }
    return r;
}

bool no_proxy_matches(std::string_view no_proxy, const origin& to) {
    while (!no_proxy.empty()) {
        const auto comma = no_proxy.find(',');
        std::string_view entry = trim(no_proxy.substr(0, comma));
        no_proxy = comma == std::string_view::npos ? std::string_view() : no_proxy.substr(comma + 1);
        if (entry == "*") return true;
        if (entry.empty()) continue;
        // A port: after the last ':' of a name or a bracketed address, never inside a bare IPv6
        // address or a CIDR block.
        std::optional<std::uint16_t> port;
        if (const auto colon = entry.rfind(':'); colon != std::string_view::npos) {
            const auto before = entry.substr(0, colon);
            const bool bracketed = before.size() > 1 && before.front() == '[' && before.back() == ']';
            if (bracketed || before.find(':') == std::string_view::npos) {
                port = port_of(entry.substr(colon + 1));
                if (!port) continue; // not a port: not an entry we understand
                entry = before;
            }
        }
        if (port && *port != to.port) continue;
        if (entry_names(entry, to.host)) return true;
    }
    return false;
}

boost::system::result<std::optional<proxy_route>>
route_for(const origin& to, const proxy_options& options, const std::function<const char*(const char*)>& getenv) {
    std::string_view url, no_proxy;
    switch (options.from) {
    case proxy_options::source::none: return std::optional<proxy_route>();
    case proxy_options::source::fixed:
        url = options.url;
        no_proxy = options.no_proxy;
        break;
    case proxy_options::source::environment:
        if (is_loopback_host(to.host)) return std::optional<proxy_route>();
        url = to.tls ? env_value(getenv, "https_proxy", "HTTPS_PROXY") : env_value(getenv, "http_proxy", "HTTP_PROXY");
        no_proxy = env_value(getenv, "no_proxy", "NO_PROXY");
        break;
    }
    if (url.empty() || no_proxy_matches(no_proxy, to)) return std::optional<proxy_route>();
    auto r = parse_proxy_url(url);
    if (!r) return r.error();
    return std::optional<proxy_route>(std::move(*r));
}

} // namespace tokenflight::http
