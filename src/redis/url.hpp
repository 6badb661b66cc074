// Where a Redis server is and how to log in: redis://[[user]:password@]host[:port][/db] and
// rediss:// (TLS), as redis-cli and most clients take them.
#ifndef TOKENFLIGHT_REDIS_URL_HPP
#define TOKENFLIGHT_REDIS_URL_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace tokenflight::redis {

struct endpoint {
    bool tls = false;       ///< rediss://
    std::string host;       ///< a name, an IPv4 address, or an IPv6 address without brackets
    std::string port = "6379";
    std::string user;       ///< ACL user ("": the default user, AUTH with the password alone)
    secret password;        ///< "": no AUTH
    int database = 0;       ///< SELECT, 0 to 15... whatever the server allows; 0: no SELECT

    /// "redis://host:port/db" without the user info: for messages and logs.
    std::string redacted() const;
};

/// Parses a Redis URL: scheme redis or rediss, a host, an optional port (1 to 65535), optional
/// percent-encoded user info as redis-cli reads it (user:password@, :password@, password@), an
/// optional database number as the path. Fails with errc::invalid_url (an empty password too)
/// or errc::unsupported_scheme; the message names no password.
boost::system::result<endpoint> parse_redis_url(std::string_view url);

} // namespace tokenflight::redis

#endif
