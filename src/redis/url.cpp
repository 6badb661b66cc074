#include "url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>

namespace tokenflight::redis {

std::string endpoint::redacted() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "rediss://" : "redis://") + (v6 ? "[" + host + "]" : host) + ':' + port + '/' +
           std::to_string(database);
}

boost::system::result<endpoint> parse_redis_url(std::string_view text) {
    auto parsed = boost::urls::parse_absolute_uri(text);
    if (!parsed) return error_code(errc::invalid_url);
    const boost::urls::url_view& u = *parsed;
    endpoint e;
    if (u.scheme() == "rediss")
        e.tls = true;
    else if (u.scheme() != "redis")
        return error_code(errc::unsupported_scheme);
    if (u.host_type() == boost::urls::host_type::none || u.encoded_host().empty()) return error_code(errc::invalid_url);
    e.host = u.host_type() == boost::urls::host_type::ipv6 ? std::string(u.host_address()) : std::string(u.host());
    // A name goes to the resolver and into SNI as a C string: no NUL, no control, no space.
    for (unsigned char c : e.host)
        if (c <= 0x20 || c >= 0x7f) return error_code(errc::invalid_url);
    if (u.has_port()) {
        const std::string_view digits = u.port();
        unsigned port = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535)
            return error_code(errc::invalid_url);
        e.port = std::to_string(port);
    }
    if (u.has_userinfo()) {
        // As redis-cli reads them: user:password@, :password@ (the default user), and
        // password@ alone. An empty password is a mistake, not "no AUTH".
        if (u.has_password()) {
            e.user = u.user();
            e.password = secret(u.password());
        } else {
            e.password = secret(u.user());
        }
        if (e.password.empty()) return error_code(errc::invalid_url);
    }
    std::string_view path = u.encoded_path();
    if (path.starts_with('/')) path.remove_prefix(1);
    if (!path.empty()) {
        int db = -1;
        const auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
        if (ec != std::errc() || end != path.data() + path.size() || db < 0) return error_code(errc::invalid_url);
        e.database = db;
    }
    if (u.has_query() || u.has_fragment()) return error_code(errc::invalid_url);
    return e;
}

} // namespace tokenflight::redis
