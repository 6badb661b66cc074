// Fuzzes tokenflight::parse_www_authenticate(): the input is one WWW-Authenticate header value.
//
// Besides ASan/UBSan, checks the shape of every challenge and that the result survives a round
// trip: written back in canonical form (params quoted) and parsed again, it must not change.
#include "fuzz_check.hpp"

#include <tokenflight/www_authenticate.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using tokenflight::challenge;

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool is_token68(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                            (s[i] >= '0' && s[i] <= '9') || std::string_view("-._~+/").find(s[i]) != std::string_view::npos))
        ++i;
    if (i == 0) return false;
    while (i < s.size() && s[i] == '=') ++i;
    return i == s.size();
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string serialize(const std::vector<challenge>& challenges) {
    std::string out;
    for (const auto& ch : challenges) {
        if (!out.empty()) out += ", ";
        out += ch.scheme;
        if (!ch.token68.empty()) {
            out += ' ';
            out += ch.token68;
            continue;
        }
        bool first = true;
        for (const auto& [name, value] : ch.params) {
            out += first ? " " : ", ";
            first = false;
            out += name;
            out += "=\"";
            for (char c : value) {
                if (c == '"' || c == '\\') out += '\\';
                out += c;
            }
            out += '"';
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view header(reinterpret_cast<const char*>(data), size);
    const auto challenges = tokenflight::parse_www_authenticate(header);

    FUZZ_CHECK(challenges.size() <= header.size());
    for (std::size_t i = 0; i < challenges.size(); ++i) {
        const auto& ch = challenges[i];
        FUZZ_CHECK(is_token(ch.scheme));
        FUZZ_CHECK(ch.token68.empty() || is_token68(ch.token68));
        FUZZ_CHECK(ch.token68.empty() || ch.params.empty());
        for (const auto& param : ch.params) {
            const std::string& name = param.first;
            FUZZ_CHECK(is_token(name));
            for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
            // param() finds a parameter by name whatever its case (the first of duplicates).
            std::string upper(name);
            for (auto& c : upper)
                if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
            std::string_view first;
            for (const auto& [n2, v2] : ch.params)
                if (n2 == name) {
                    first = v2;
                    break;
                }
            FUZZ_CHECK(ch.param(upper) == first);
        }
        // find_challenge() returns the first challenge with that scheme, case-insensitively.
        const challenge* found = tokenflight::find_challenge(challenges, ch.scheme);
        FUZZ_CHECK(found != nullptr && found <= &ch && iequals(found->scheme, ch.scheme));
    }

    // Round trip through the canonical form.
    const std::string canonical = serialize(challenges);
    const auto again = tokenflight::parse_www_authenticate(canonical);
    FUZZ_CHECK(again.size() == challenges.size());
    for (std::size_t i = 0; i < again.size(); ++i) {
        FUZZ_CHECK(again[i].scheme == challenges[i].scheme);
        FUZZ_CHECK(again[i].token68 == challenges[i].token68);
        FUZZ_CHECK(again[i].params == challenges[i].params);
    }
    return 0;
}
