// Fuzzes tokenflight::parse_token_response().
//
// Input: "SSS <body>" (three ASCII digits, a space, then the response body) gives the HTTP status;
// any other input is a 200 response whose body is the whole input. The client secret used for
// scrubbing is "FUZZ-SECRET-123", which the dictionary offers so that it lands in bodies.
#include "fuzz_check.hpp"

#include <tokenflight/error.hpp>
#include <tokenflight/secret.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using std::chrono::seconds;

constexpr std::string_view fuzz_secret = "FUZZ-SECRET-123";
// 2023-11-14T22:13:20Z; the seeds' expires_on and JWT exp values are relative to it.
constexpr std::int64_t fuzz_now = 1700000000;
constexpr seconds default_lifetime{3600};
constexpr std::int64_t ten_years = 10LL * 365 * 24 * 3600;

bool contains(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

// Same length as fuzz_secret, no character in common at either end, and no border (no proper
// prefix that is also a suffix), like fuzz_secret: replacing one by the other in a body can
// neither create nor merge occurrences.
constexpr std::string_view other_secret = "QUUX-PUBLIC-987";
static_assert(fuzz_secret.size() == other_secret.size());

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    std::size_t i = 0;
    for (auto p = text.find(from); p != std::string_view::npos; p = text.find(from, i)) {
        out.append(text.substr(i, p - i));
        out.append(to);
        i = p + from.size();
    }
    out.append(text.substr(i));
    return out;
}

bool printable_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7E) return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    const unsigned status = fuzz::take_status(body);
    const tokenflight::secret scrub_secret{fuzz_secret};
    const auto now = std::chrono::system_clock::time_point(seconds(fuzz_now));
    tokenflight::diagnostics diag;
    const auto r = tokenflight::parse_token_response(status, body, now, default_lifetime, scrub_secret, diag);

    if (r) {
        const auto& t = *r;
        FUZZ_CHECK(status >= 200 && status < 300);
        FUZZ_CHECK(!t.access_token.empty());
        FUZZ_CHECK(t.lifetime > seconds(0));
        FUZZ_CHECK(t.lifetime <= std::max(seconds(ten_years), default_lifetime));
        FUZZ_CHECK(t.lifetime_from != tokenflight::lifetime_source::configured_default ||
                   t.lifetime == default_lifetime);
        FUZZ_CHECK(!t.refresh_in || (*t.refresh_in > seconds(0) && *t.refresh_in < t.lifetime));
    } else {
        const auto ec = r.error();
        FUZZ_CHECK(ec.failed());
        // Ours: an OAuth error the server reported, or one the client found.
        FUZZ_CHECK(ec.category() == tokenflight::error_category() || ec.category() == tokenflight::oauth_category());
        FUZZ_CHECK(diag.http_status == static_cast<int>(status));
        using tokenflight::errc;
        if (ec != tokenflight::condition::oauth_error) {
            if (status >= 500 || status == 429) FUZZ_CHECK(ec == errc::server_unavailable);
            else if (status < 200 || status >= 300) FUZZ_CHECK(ec == errc::token_endpoint_status);
        }
    }

    // Diagnostics are bounded, printable where promised, and never hold the secret, whole or cut.
    FUZZ_CHECK(diag.body_excerpt.size() <= 256);
    FUZZ_CHECK(printable_ascii(diag.body_excerpt));
    FUZZ_CHECK(diag.oauth_error.size() <= 128);
    FUZZ_CHECK(diag.error_description.size() <= 512);
    FUZZ_CHECK(diag.error_uri.size() <= 512);
    FUZZ_CHECK(!contains(diag.body_excerpt, fuzz_secret));
    FUZZ_CHECK(!contains(diag.oauth_error, fuzz_secret));
    FUZZ_CHECK(!contains(diag.error_description, fuzz_secret));
    FUZZ_CHECK(!contains(diag.error_uri, fuzz_secret));
    FUZZ_CHECK(!contains(diag.to_string(), fuzz_secret));

    // Nothing of the secret may reach the diagnostics, not even a part of it that a length bound
    // cut off: the same body with another secret in its place (and that one to scrub) must give
    // the same diagnostics. Skipped where the body holds backslashes (a JSON escape can spell the
    // secret without its raw bytes, which the replacement would miss) or the other secret itself,
    // raw or in base64 (which the scrubber masks too). Base64 copies are replaced as well.
    const std::string fuzz_b64 = tokenflight::base64_encode(fuzz_secret);   // 20 characters, no padding
    const std::string other_b64 = tokenflight::base64_encode(other_secret); // likewise
    if (body.find('\\') == std::string_view::npos && body.find(other_secret) == std::string_view::npos &&
        body.find(other_b64) == std::string_view::npos) {
        const std::string other_body = replace_all(replace_all(body, fuzz_secret, other_secret), fuzz_b64, other_b64);
        tokenflight::diagnostics other_diag;
        const auto r2 = tokenflight::parse_token_response(status, other_body, now, default_lifetime,
                                                          tokenflight::secret{other_secret}, other_diag);
        FUZZ_CHECK(r.has_value() == r2.has_value());
        if (!r) {
            FUZZ_CHECK(r.error() == r2.error());
            FUZZ_CHECK(diag.http_status == other_diag.http_status);
            FUZZ_CHECK(diag.body_excerpt == other_diag.body_excerpt);
            FUZZ_CHECK(diag.oauth_error == other_diag.oauth_error);
            FUZZ_CHECK(diag.error_description == other_diag.error_description);
            FUZZ_CHECK(diag.error_uri == other_diag.error_uri);
        }
    }
    return 0;
}
