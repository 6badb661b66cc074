#include <tokenflight/error.hpp>

#include <boost/asio/error.hpp>
#include <doctest/doctest.h>

using namespace tokenflight;

TEST_CASE("errc values make error codes of the tokenflight category with distinct messages") {
    error_code a = errc::invalid_client, b = errc::request_timeout;
    CHECK(a.category().name() == std::string("tokenflight"));
    CHECK(a.message() != b.message());
    CHECK(a.message().find("invalid_client") != std::string::npos);
    CHECK(a != b);
}

TEST_CASE("transient and permanent failures are told apart") {
    CHECK(is_transient(errc::server_unavailable));
    CHECK(is_transient(errc::connect_timeout));
    CHECK(is_transient(errc::connection_closed));
    CHECK(is_transient(boost::asio::error::connection_refused));
    CHECK_FALSE(is_transient(errc::invalid_client));
    CHECK_FALSE(is_transient(errc::invalid_scope));
    CHECK_FALSE(is_transient(errc::token_endpoint_status));
    CHECK_FALSE(is_transient(errc::malformed_response));
    CHECK_FALSE(is_transient(boost::asio::error::operation_aborted));
    CHECK(is_oauth_error(errc::invalid_grant));
    CHECK(is_oauth_error(errc::oauth_error));
    CHECK_FALSE(is_oauth_error(errc::server_unavailable));
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
