#ifndef TOKENFLIGHT_HTTP_URL_HPP
#define TOKENFLIGHT_HTTP_URL_HPP

#include <boost/system/result.hpp>

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

/// @file
/// Origins and absolute URLs, parsed with Boost.URL.

/// The HTTP/1.1 transport: URLs, messages, header checks, prepared requests, the connection pool.
namespace tokenflight::http {

/// (scheme, host, port): the key of a connection pool.
struct origin {
    bool tls = false;    ///< https
    std::string host;    ///< host name or address, without IPv6 brackets
    std::uint16_t port = 0; ///< never 0 once parsed: 443 or 80 when the URL gives none

    /// Member-wise comparison, so that an origin can key an ordered map.
    auto operator<=>(const origin&) const = default;
    /// "https://host:port" (IPv6 addresses in brackets)
    std::string to_string() const;
    /// The Host header's value: host (IPv6 in brackets) and ":port" unless the scheme's default.
    std::string authority() const;
};

/// An absolute http(s) URL split into its origin and request target.
struct location {
    http::origin origin; ///< scheme, host and port
    std::string target; ///< path and query, at least "/"
};

/// Parses an absolute http:// or https:// URL.
/// Errors: errc::invalid_url (unparsable, no host, user info), errc::unsupported_scheme.
boost::system::result<location> parse_url(std::string_view url);

/// A URL for messages: user info replaced by `***@`, query and fragment by `?***`, control
/// characters stripped. Works on any text, parsable or not (an unparsable URL is what error
/// messages most often show).
std::string redact_url(std::string_view url);

/// True for "localhost", 127.0.0.0/8 and ::1: hosts where plain http cannot leak a secret.
/// Other names under .localhost are not trusted: resolvers may look them up in DNS.
bool is_loopback_host(std::string_view host) noexcept;

} // namespace tokenflight::http

#endif
