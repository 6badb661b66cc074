#ifndef TOKENFLIGHT_WWW_AUTHENTICATE_HPP
#define TOKENFLIGHT_WWW_AUTHENTICATE_HPP

#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// Parsing of `WWW-Authenticate` challenges (RFC 9110 section 11.6.1, RFC 6750 section 3).

namespace tokenflight {

/// One authentication challenge, e.g. `Bearer realm="api", error="invalid_token"`.
struct challenge {
    std::string scheme;  ///< as sent, e.g. "Bearer"
    std::string token68; ///< for challenges like `Negotiate abc==`
    std::vector<std::pair<std::string, std::string>> params; ///< names lower-cased, values unquoted

    /// The value of parameter `name` (lower case), or an empty view.
    std::string_view param(std::string_view name) const noexcept;
    /// The RFC 6750 `error` parameter (`invalid_token`, `insufficient_scope`, ...), or an empty
    /// view.
    std::string_view error() const noexcept { return param("error"); }
    /// The RFC 6750 `error_description` parameter, or an empty view.
    std::string_view error_description() const noexcept { return param("error_description"); }
};

/// Parses a `WWW-Authenticate` header value into its challenges. Malformed input never throws:
/// parsing stops at the first byte that cannot belong to a challenge and returns what it has.
std::vector<challenge> parse_www_authenticate(std::string_view header);

/// The first challenge whose scheme equals `scheme` (case-insensitively), or nullptr.
const challenge* find_challenge(const std::vector<challenge>& challenges, std::string_view scheme) noexcept;

} // namespace tokenflight

#endif
