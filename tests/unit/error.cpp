#include <tokenflight/error.hpp>

#include <boost/asio/error.hpp>
#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace tokenflight;

namespace {
constexpr int last_oauth = static_cast<int>(oauth_errc::other);
constexpr int last_errc = static_cast<int>(errc::http2_protocol_error);
} // namespace

TEST_CASE("server-reported OAuth errors and client-side errors have categories of their own") {
    error_code a = oauth_errc::invalid_client, b = errc::request_timeout;
    CHECK(a.category().name() == std::string("tokenflight.oauth"));
    CHECK(b.category().name() == std::string("tokenflight"));
    CHECK(a.message().find("invalid_client") != std::string::npos);
    CHECK(a != b);
    // Same numeric value, different categories: never equal.
    CHECK(error_code(oauth_errc::invalid_request) != error_code(static_cast<errc>(1)));
}

TEST_CASE("every code has a distinct name and message, and to_string names it as declared") {
    std::set<std::string> names, messages;
    for (int v = 1; v <= last_oauth; ++v) {
        const auto e = static_cast<oauth_errc>(v);
        names.insert("oauth." + std::string(to_string(e)));
        messages.insert(error_code(e).message());
    }
    for (int v = 1; v <= last_errc; ++v) {
        const auto e = static_cast<errc>(v);
        names.insert(std::string(to_string(e)));
        messages.insert(error_code(e).message());
    }
    CHECK(names.size() == static_cast<std::size_t>(last_oauth + last_errc));
    CHECK(messages.size() == static_cast<std::size_t>(last_oauth + last_errc));
    CHECK(to_string(oauth_errc::invalid_client) == "invalid_client");
    CHECK(to_string(oauth_errc::other) == "other");
    CHECK(to_string(errc::request_timeout) == "request_timeout");
    CHECK(to_string(errc::tls_verification_failed) == "tls_verification_failed");
    CHECK(to_string(condition::transient) == "transient");
    CHECK(to_string(static_cast<errc>(0)) == "unknown");
    CHECK(to_string(static_cast<errc>(last_errc + 1)) == "unknown");
    CHECK(error_code(static_cast<errc>(last_errc + 1)).message().find("unknown") != std::string::npos);
}

TEST_CASE("conditions classify codes of every category") {
    using boost::asio::error::make_error_code;
    // transient
    CHECK(error_code(errc::server_unavailable) == condition::transient);
    CHECK(error_code(errc::connect_timeout) == condition::transient);
    CHECK(error_code(errc::request_timeout) == condition::transient);
    CHECK(error_code(errc::queue_timeout) == condition::transient);
    CHECK(error_code(errc::connection_closed) == condition::transient);
    CHECK(error_code(oauth_errc::temporarily_unavailable) == condition::transient);
    CHECK(error_code(oauth_errc::server_error) == condition::transient);
    CHECK(error_code(boost::asio::error::connection_refused) == condition::transient);
    CHECK(error_code(boost::asio::error::eof) == condition::transient);
    CHECK(is_transient(boost::asio::error::connection_reset));
    CHECK(error_code(oauth_errc::invalid_client) != condition::transient);
    CHECK(error_code(errc::token_endpoint_status) != condition::transient);
    CHECK(error_code(errc::malformed_response) != condition::transient);
    CHECK(error_code(boost::asio::error::operation_aborted) != condition::transient);
    // HTTP/2's stream and connection failures are worth a retry, as HTTP/1.1's resets are
    for (auto e : {errc::stream_reset, errc::stream_refused, errc::http2_protocol_error})
        CHECK_MESSAGE(error_code(e) == condition::transient, to_string(e));
    // oauth_error: exactly the OAuth category
    for (int v = 1; v <= last_oauth; ++v) CHECK(error_code(static_cast<oauth_errc>(v)) == condition::oauth_error);
    for (int v = 1; v <= last_errc; ++v) CHECK(error_code(static_cast<errc>(v)) != condition::oauth_error);
    // configuration
    for (auto e : {errc::missing_credentials, errc::invalid_url, errc::unsupported_scheme, errc::insecure_transport,
                   errc::invalid_header_name, errc::invalid_header_value, errc::invalid_request_target,
                   errc::invalid_method, errc::invalid_signing_key, errc::key_algorithm_mismatch,
                   errc::invalid_proxy, errc::invalid_client_certificate, errc::certificate_key_mismatch,
                   errc::token_not_shareable})
        CHECK_MESSAGE(error_code(e) == condition::configuration, to_string(e));
    CHECK(error_code(errc::request_timeout) != condition::configuration);
    CHECK(error_code(oauth_errc::invalid_client) != condition::configuration);
    // bad_response
    for (auto e : {errc::token_endpoint_status, errc::malformed_response, errc::missing_access_token,
                   errc::bad_expires_in, errc::unsupported_token_type, errc::invalid_token_response,
                   errc::issuer_mismatch, errc::bad_metadata,
                   errc::header_too_large, errc::body_too_large})
        CHECK_MESSAGE(error_code(e) == condition::bad_response, to_string(e));
    CHECK(error_code(errc::server_unavailable) != condition::bad_response);
    // tls_verification
    for (auto e : {errc::tls_untrusted_certificate, errc::tls_name_mismatch, errc::tls_certificate_expired,
                   errc::tls_verification_failed})
        CHECK(error_code(e) == condition::tls_verification);
    CHECK(error_code(errc::connect_timeout) != condition::tls_verification);
    // Codes no condition claims.
    for (auto e : {errc::closed, errc::refresh_backoff})
        for (int c = 1; c <= static_cast<int>(condition::tls_verification); ++c)
            CHECK(error_code(e) != static_cast<condition>(c));
}

TEST_CASE("error_with_diagnostics carries the code and what the server said") {
    diagnostics d;
    d.http_status = 401;
    d.oauth_error = "invalid_client";
    d.error_description = "bad secret";
    const error_with_diagnostics e(oauth_errc::invalid_client, d);
    CHECK(e.code() == oauth_errc::invalid_client);
    CHECK(e.get_diagnostics().http_status == 401);
    CHECK(std::string(e.what()).find("HTTP 401, invalid_client: bad secret") != std::string::npos);
    const boost::system::system_error& base = e; // catchable as the usual Asio exception
    CHECK(base.code() == condition::oauth_error);
}

TEST_CASE("diagnostics summarise what the server said") {
    diagnostics d;
    CHECK(d.to_string().empty());
    d.http_status = 401;
    d.oauth_error = "invalid_client";
    d.error_description = "bad secret";
    CHECK(d.to_string() == "HTTP 401, invalid_client: bad secret");
    d.clear();
    CHECK(d.http_status == 0);
}
