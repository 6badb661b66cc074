#ifndef TOKENFLIGHT_DISCOVERY_HPP
#define TOKENFLIGHT_DISCOVERY_HPP

#include <tokenflight/credentials.hpp>
#include <tokenflight/error.hpp>

#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// @file
/// Authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0), without any I/O.

namespace tokenflight {

/// The members of an authorization server's metadata that tokenflight uses (RFC 8414 section 2,
/// RFC 8705 section 5, RFC 9449 section 5.1).
struct server_metadata {
    std::string issuer;         ///< equal to the issuer asked for (checked)
    std::string token_endpoint; ///< where token requests go
    /// `mtls_endpoint_aliases.token_endpoint`: the token endpoint for clients that authenticate
    /// with a TLS client certificate; empty when the server names none.
    std::string mtls_token_endpoint;
    /// `token_endpoint_auth_methods_supported`; when the server omits it, RFC 8414's default
    /// (`client_secret_basic`).
    std::vector<std::string> auth_methods{"client_secret_basic"};
    /// `token_endpoint_auth_signing_alg_values_supported` (empty: not said).
    std::vector<std::string> auth_signing_algs;
    /// `dpop_signing_alg_values_supported` (empty: the server does not announce DPoP).
    std::vector<std::string> dpop_signing_algs;

    /// Does the server list `method` (its registered name, e.g. "private_key_jwt")?
    bool supports_auth(std::string_view method) const;
};

/// The URLs to fetch metadata from, in the order tried: RFC 8414's
/// `/.well-known/oauth-authorization-server` inserted before the issuer's path, then OpenID
/// Connect's `/.well-known/openid-configuration` appended to it. For `https://a.example/t1`:
/// `https://a.example/.well-known/oauth-authorization-server/t1` and
/// `https://a.example/t1/.well-known/openid-configuration`.
/// Errors: errc::invalid_url, unsupported_scheme; errc::invalid_url also for an issuer with a
/// query or fragment (RFC 8414 section 2).
boost::system::result<std::vector<std::string>> discovery_urls(std::string_view issuer);

/// Parses a metadata response.
///
/// - A 2xx JSON object whose `issuer` equals `expected_issuer` exactly (RFC 8414 section 3.3:
///   otherwise an attacker's document could name an endpoint of its choosing), with a
///   `token_endpoint` that is an http(s) URL: the metadata. Other members of a wrong type are
///   ignored; array members keep their string elements.
/// - `issuer` differing: errc::issuer_mismatch (both values, cleaned of control characters, in
///   `diag.error_description`).
/// - Anything else (non-2xx, not JSON, no `token_endpoint`, a bad URL): errc::bad_metadata, with
///   the status and a short excerpt of the body in `diag`.
boost::system::result<server_metadata> parse_server_metadata(unsigned status, std::string_view body,
                                                              std::string_view expected_issuer, diagnostics& diag);

/// client_auth::automatic, resolved with what the server supports: `private_key_jwt` when the
/// credentials hold a key and the server lists it; else, with a certificate and no secret,
/// `tls_client_auth` or `self_signed_tls_client_auth`, whichever is listed (the former first;
/// the two send the same request); else, with a secret, `automatic` when the
/// server lists both `client_secret_basic` and `client_secret_post` (which one the client is
/// registered for is not in the metadata: Basic first, then post once on `invalid_client`),
/// else the one of them it lists, else `client_secret_jwt` if listed, else `automatic`.
/// Credentials with another method are kept as they are. When the method becomes `private_key_jwt` and no algorithm was configured, the
/// key's default algorithm is kept if the server lists it (or lists none), else the first
/// listed one the key can sign with is set in `creds.assertion.alg`.
client_auth choose_client_auth(const server_metadata& metadata, credentials& creds);

} // namespace tokenflight

#endif
