// tokenflight-load's targets file: vegeta's plain-text ("http") targets format, so that one run
// can spread its requests over several URLs, methods, headers and bodies.
//
//     # a comment
//     GET https://api.example/users
//     X-Account: 42
//
//     POST https://api.example/orders
//     Content-Type: application/json
//     @order.json
//
// A target is a `METHOD URL` line, then `Name: value` header lines, then at most one `@path`
// line naming a file whose contents are the body. Blank lines, or the next `METHOD URL` line,
// end a target; lines starting with '#' are skipped. Lines may end in CRLF; spaces and tabs
// around a line are trimmed. As in vegeta, a relative @path is relative to the current
// directory, not to the targets file's.
//
// One extension, in a comment so that vegeta still reads the file: a `# tokenflight-scope: S`
// line inside a target asks for its token with scope S (RFC 6749 scope tokens separated by
// spaces) instead of --scope. Targets with the same scope share a token source.
#ifndef TOKENFLIGHT_LOAD_TARGETS_HPP
#define TOKENFLIGHT_LOAD_TARGETS_HPP

#include <tokenflight/http/message.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tokenflight::load {

/// One request of a targets file.
struct target {
    http::verb method = http::verb::get;
    std::string url; ///< an absolute http:// or https:// URL without user info (http::parse_url)
    std::vector<std::pair<std::string, std::string>> headers; ///< in file order, repeats kept
    std::string body;      ///< the @file's contents, or empty
    std::string body_path; ///< the @path as written (for messages), or empty
    unsigned weight = 1;   ///< its share of the requests (--weights)
    std::optional<std::string> scope; ///< `# tokenflight-scope:`; unset: the run's --scope

    /// "GET http://host/path", the URL passed through http::redact_url (no user info, query or
    /// fragment): the target's name in reports.
    std::string name() const;
};

/// A bad targets file or --weights: one line, such as "targets.txt:12: bad method 'GTE'". Never
/// contains a header value: those may be API keys.
struct targets_error {
    std::string message;
};

inline constexpr std::size_t max_targets = 1000;
inline constexpr unsigned max_weights = 100'000; ///< the weights' sum, divided by their gcd
inline constexpr std::size_t max_targets_file = 4 * 1024 * 1024; ///< bytes of the targets file
inline constexpr std::size_t max_body_file = 16 * 1024 * 1024;   ///< bytes of one @body file
/// Bytes of all bodies together. Each -t event loop prepares its own copy of every request, so a
/// run holds at most (loops + 1) times this.
inline constexpr std::size_t max_bodies = 32 * 1024 * 1024;

/// Parses `text`, a targets file's contents (`file_name` only names it in messages).
/// `read_body(path)` gets the @path as written and returns the file's contents, or nullopt when it
/// cannot be read or holds more than max_body_file bytes.
std::variant<std::vector<target>, targets_error>
parse_targets(std::string_view text, std::string_view file_name,
              const std::function<std::optional<std::string>(const std::string&)>& read_body);

/// Reads the targets file at `path` (at most max_targets_file bytes) and parses it, reading each
/// @path as given: relative to the current directory.
std::variant<std::vector<target>, targets_error> load_targets(const std::string& path);

/// Applies --weights ("5,1,1"): one whole number from 1 to 1000 per target, in file order, as
/// many as there are targets, adding up to at most max_weights once divided by their greatest
/// common divisor (a cycle of turns is that long). On error the targets are left as they were.
std::optional<targets_error> apply_weights(std::vector<target>& targets, std::string_view weights);

} // namespace tokenflight::load

#endif
