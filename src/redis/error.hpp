// Errors of tokenflight's Redis connections, in a category of their own ("tokenflight.redis"):
// what the transport errors and tokenflight's errc do not say.
#ifndef TOKENFLIGHT_REDIS_ERROR_HPP
#define TOKENFLIGHT_REDIS_ERROR_HPP

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace tokenflight::redis {

enum class redis_errc {
    auth_refused = 1, ///< AUTH failed: a wrong user or password (the server's text not kept)
    select_refused,   ///< SELECT failed: no such database
    tls_unsupported,  ///< rediss:// without a TLS context (connection_options::tls)
};

const boost::system::error_category& redis_category() noexcept;

inline boost::system::error_code make_error_code(redis_errc e) noexcept {
    return {static_cast<int>(e), redis_category()};
}

} // namespace tokenflight::redis

template <>
struct boost::system::is_error_code_enum<tokenflight::redis::redis_errc> : std::true_type {};

#endif
