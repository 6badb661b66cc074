// Fuzzes tokenflight::parse_server_metadata() (RFC 8414 / OpenID Connect discovery), and
// choose_client_auth() on what it accepts.
//
// Input: "SSS <body>" (three ASCII digits, a space, then the body) gives the HTTP status; any
// other input is a 200 response whose body is the whole input. The expected issuer is
// "https://as.example/t1", which the dictionary offers.
#include "fuzz_check.hpp"

#include <tokenflight/credentials.hpp>
#include <tokenflight/discovery.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/http/url.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

constexpr std::string_view expected_issuer = "https://as.example/t1";

bool no_controls(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7F) return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    const unsigned status = fuzz::take_status(body);
    tokenflight::diagnostics diag;
    const auto r = tokenflight::parse_server_metadata(status, body, expected_issuer, diag);
    FUZZ_CHECK(diag.http_status == static_cast<int>(status));
    if (r) {
        // Only a 2xx document naming exactly the expected issuer, with endpoints that are URLs.
        FUZZ_CHECK(status >= 200 && status < 300);
        FUZZ_CHECK(r->issuer == expected_issuer);
        FUZZ_CHECK(tokenflight::http::parse_url(r->token_endpoint).has_value());
        FUZZ_CHECK(r->mtls_token_endpoint.empty() || tokenflight::http::parse_url(r->mtls_token_endpoint).has_value());
        // Whatever the server lists, picking a method terminates with a method.
        for (int shape = 0; shape < 3; ++shape) {
            tokenflight::credentials c;
            c.client_id = "c";
            c.auth = tokenflight::client_auth::automatic;
            if (shape != 1) c.client_secret = tokenflight::secret("s");
            const auto m = tokenflight::choose_client_auth(*r, c);
            FUZZ_CHECK(static_cast<int>(m) >= 0 &&
                       static_cast<int>(m) <= static_cast<int>(tokenflight::client_auth::self_signed_tls_client_auth));
            // Without a key or a certificate, never a method that needs one.
            FUZZ_CHECK(m != tokenflight::client_auth::private_key_jwt && m != tokenflight::client_auth::tls_client_auth &&
                       m != tokenflight::client_auth::self_signed_tls_client_auth);
        }
    } else {
        using tokenflight::errc;
        FUZZ_CHECK(r.error() == errc::bad_metadata || r.error() == errc::issuer_mismatch);
        if (status < 200 || status >= 300) FUZZ_CHECK(r.error() == errc::bad_metadata);
    }
    // What the server said reaches a message cut and without control characters.
    FUZZ_CHECK(diag.body_excerpt.size() <= 200);
    FUZZ_CHECK(no_controls(diag.body_excerpt));
    FUZZ_CHECK(diag.error_description.size() <= 512);
    FUZZ_CHECK(no_controls(diag.error_description));
    return 0;
}
