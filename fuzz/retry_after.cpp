// Fuzzes tokenflight::parse_retry_after(): the input is one Retry-After header value
// (delay-seconds or an IMF-fixdate), read relative to a fixed "now".
#include "fuzz_check.hpp"

#include <tokenflight/token_endpoint.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using std::chrono::seconds;
    const std::string_view value(reinterpret_cast<const char*>(data), size);
    // 2023-11-14T22:13:20Z
    const auto now = std::chrono::system_clock::time_point(seconds(1700000000));
    const auto delay = tokenflight::parse_retry_after(value, now);
    if (delay) {
        // Never negative, and capped at a day.
        FUZZ_CHECK(*delay >= seconds(0));
        FUZZ_CHECK(*delay <= seconds(24 * 3600));
    }
    // Plain small delay-seconds are taken as they are.
    if (!value.empty() && value.size() <= 5) {
        bool digits = true;
        std::int64_t n = 0;
        for (char c : value) {
            if (c < '0' || c > '9') digits = false;
            else n = n * 10 + (c - '0');
        }
        if (digits) FUZZ_CHECK(delay && *delay == seconds(n < 86400 ? n : 86400));
    }
    return 0;
}
