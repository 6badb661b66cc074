#ifndef TOKENFLIGHT_HTTP_PROXY_HPP
#define TOKENFLIGHT_HTTP_PROXY_HPP

#include <tokenflight/http/url.hpp>
#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

/// @file
/// Egress HTTP proxies: which one an origin goes through, and the settings behind that choice.

namespace tokenflight::http {

/// How a pool's connections reach their origins.
struct proxy_options {
    /// Where the proxy comes from.
    enum class source {
        environment, ///< HTTPS_PROXY / HTTP_PROXY / NO_PROXY (or lower case) as the process has them (default)
        none,        ///< direct, whatever the environment says
        fixed,       ///< `url` for every origin but those `no_proxy` names
    };
    source from = source::environment; ///< see source
    /// `fixed`: the proxy, `http://[user:password@]host[:port]`. The user info is a credential:
    /// it is sent as `Proxy-Authorization: Basic`, never printed.
    std::string url;
    /// `fixed`: origins reached directly, in NO_PROXY's syntax (see no_proxy_matches).
    std::string no_proxy;
};

/// The proxy one origin goes through.
struct proxy_route {
    origin proxy;              ///< the proxy's address (plain http)
    secret authorization;      ///< `Basic ...` from the proxy URL's user info; empty without one
};

/// Parses a proxy URL: `http://[user:password@]host[:port]` (port 80 by default; a URL without
/// a scheme is taken as http, as curl does). Errors: errc::invalid_proxy for anything else (an
/// https:// proxy included: TLS to the proxy is not supported), with nothing of the URL's user
/// info in any message.
boost::system::result<proxy_route> parse_proxy_url(std::string_view url);

/// Does a NO_PROXY value name `to`? Entries are separated by commas (blanks around them
/// ignored):
/// - `*` names every origin;
/// - a host name names itself and every name under it (`example.com` and `.example.com` both name
///   `api.example.com`), compared without case;
/// - an IP address names itself, a CIDR block (`10.0.0.0/8`, `fd00::/8`) every address in it;
///   IPv6 addresses may be in brackets;
/// - any entry may end in `:port`, and then names that port only.
bool no_proxy_matches(std::string_view no_proxy, const origin& to);

/// The route to `to` under `options`, reading the environment through `getenv` (for
/// source::environment: HTTPS_PROXY for https origins, HTTP_PROXY for http ones, each also in
/// lower case, the lower case first; NO_PROXY likewise). Loopback hosts are never proxied from
/// the environment (a proxy elsewhere cannot reach this machine's loopback); a fixed proxy
/// applies to them too. nullopt: direct. Errors: errc::invalid_proxy for a proxy URL that does
/// not parse.
boost::system::result<std::optional<proxy_route>>
route_for(const origin& to, const proxy_options& options,
          const std::function<const char*(const char*)>& getenv);

} // namespace tokenflight::http

#endif
