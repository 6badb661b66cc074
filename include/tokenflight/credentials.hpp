#ifndef TOKENFLIGHT_CREDENTIALS_HPP
#define TOKENFLIGHT_CREDENTIALS_HPP

#include <tokenflight/secret.hpp>

#include <boost/system/result.hpp>

#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// @file
/// Client credentials for the RFC 6749 section 4.4 client-credentials grant.

namespace tokenflight {

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1).
enum class client_auth {
    basic,     ///< `client_secret_basic`: HTTP Basic with form-urlencoded id and secret (default)
    post,      ///< `client_secret_post`: `client_id` and `client_secret` in the form body
    automatic, ///< try basic; on `invalid_client` retry once with post and remember what worked
};

/// Everything needed to ask a token endpoint for a token.
///
/// Streaming a credentials object prints the secret as `***`.
struct credentials {
    std::string token_url;  ///< https://... (http:// only to loopback unless allow_insecure_http)
    std::string client_id; ///< the client's identifier, as registered with the provider
    secret client_secret;   ///< the client's secret; prints as `***`
    std::string scope;      ///< space-separated scopes; empty sends no scope parameter
    /// Extra form parameters, e.g. {"audience", "..."} or {"resource", "..."}.
    std::vector<std::pair<std::string, std::string>> extra_params;
    client_auth auth = client_auth::basic; ///< how the id and secret are sent
    /// Send the secret over plain http:// to a non-loopback host. Off unless you really mean it.
    bool allow_insecure_http = false;

    /// Reads TOKENFLIGHT_TOKEN_URL, TOKENFLIGHT_CLIENT_ID, TOKENFLIGHT_CLIENT_SECRET and
    /// (optionally) TOKENFLIGHT_SCOPE. When TOKENFLIGHT_CLIENT_SECRET is unset,
    /// TOKENFLIGHT_CLIENT_SECRET_FILE names a file holding the secret.
    /// Fails with errc::missing_credentials naming no secret value.
    static boost::system::result<credentials> from_env();

    /// Writes every field but the secret's value, which prints as `***`.
    friend std::ostream& operator<<(std::ostream& os, const credentials& c);
};

/// Reads a secret from a file: the first line, without the line ending and surrounding blanks.
/// Errors: the file's open error, or errc::missing_credentials for an empty file.
boost::system::result<secret> load_secret_file(const std::filesystem::path& path);

} // namespace tokenflight

#endif
