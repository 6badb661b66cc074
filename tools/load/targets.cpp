#include "targets.hpp"

#include <tokenflight/error.hpp>
#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/http/url.hpp>

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <memory>
#include <numeric>
#include <system_error>

namespace tokenflight::load {

namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }

constexpr std::string_view scope_directive = "# tokenflight-scope:";

// RFC 6749 section 3.3: scope-token *( SP scope-token ), scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
bool is_scope(std::string_view s) {
    bool token_started = false;
    for (const char c : s) {
        if (c == ' ') {
            if (!token_started) return false; // leading or double space
            token_started = false;
        } else if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return false;
        } else {
            token_started = true;
        }
    }
    return token_started;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return s;
}

// `s` made safe for a message and a terminal.
std::string shown(std::string_view s) {
    std::string out(s);
    strip_controls(out);
    return out;
}

std::string mib(std::size_t bytes) { return std::to_string(bytes / (1024 * 1024)) + " MiB"; }

// A method worth echoing in a message: what a mistyped method looks like, not a stray value.
bool looks_like_method(std::string_view s) {
    return s.size() <= 20 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
           });
}

std::string bad_method(std::string_view m) {
    if (!looks_like_method(m)) return "expected 'METHOD URL' or 'Name: value'";
    std::string upper(m);
    for (char& c : upper)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (upper != m && boost::beast::http::string_to_verb(upper) != http::verb::unknown)
        return "bad method '" + std::string(m) + "' (methods are case-sensitive: " + upper + ")";
    return "bad method '" + std::string(m) + "' (expected 'METHOD URL' or 'Name: value')";
}

struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// The contents of the file at `path`, or nullopt and why not in `why`.
std::optional<std::string> read_file(const std::string& path, std::size_t limit, std::string& why) {
    std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "rb"));
    if (!f) {
        why = std::generic_category().message(errno);
        return std::nullopt;
    }
    std::string out;
    char buffer[64 * 1024];
    for (;;) {
        const std::size_t n = std::fread(buffer, 1, sizeof buffer, f.get());
        out.append(buffer, n);
        if (out.size() > limit) {
            why = "bigger than " + mib(limit);
            return std::nullopt;
        }
        if (n == sizeof buffer) continue;
        if (std::ferror(f.get())) {
            why = std::generic_category().message(errno);
            return std::nullopt;
        }
        return out;
    }
}

} // namespace

std::string target::name() const {
    return std::string(boost::beast::http::to_string(method)) + ' ' + http::redact_url(url);
}

std::variant<std::vector<target>, targets_error>
parse_targets(std::string_view text, std::string_view file_name,
              const std::function<std::optional<std::string>(const std::string&)>& read_body) {
    std::vector<target> targets;
    bool open = false; // the last target may still take headers or a body: no blank line since
    std::size_t body_bytes = 0;
    std::size_t line_number = 0;
    const std::string file = shown(file_name);
    const auto fail = [&](const std::string& what) {
        return targets_error{file + ':' + std::to_string(line_number) + ": " + what};
    };
    // A header or body line that belongs to no target.
    const auto orphan = [&](std::string_view what) {
        return fail(std::string(what) + (targets.empty() ? " before any 'METHOD URL' line"
                                                         : " after a blank line: it must follow its 'METHOD URL' "
                                                           "line without a blank line between"));
    };

    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t end = std::min(text.find('\n', pos), text.size());
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_number;
        if (line.ends_with('\r')) line.remove_suffix(1);
        const bool indented = !line.empty() && blank(line.front());
        line = trim(line);
        if (line_number == 1 && line.starts_with("\xEF\xBB\xBF"))
            return fail("the file starts with a UTF-8 byte order mark: save it without one");
        if (line.empty()) {
            open = false;
            continue;
        }
        if (line.starts_with(scope_directive)) {
            if (!open) return orphan("a scope line ('" + std::string(scope_directive) + "')");
            target& t = targets.back();
            if (t.scope) return fail("a second scope line: a target has one scope");
            const std::string_view scope = trim(line.substr(scope_directive.size()));
            if (!is_scope(scope))
                return fail("bad scope '" + shown(scope) +
                            "': scope tokens (printable ASCII but '\"' and '\\') separated by single spaces");
            t.scope = std::string(scope);
            continue;
        }
        if (line.front() == '#') continue;

        if (line.front() == '@') {
            if (!open) return orphan("a body line ('@path')");
            target& t = targets.back();
            if (!t.body_path.empty()) return fail("a second body line: a target has one body file");
            std::string path(line.substr(1));
            if (path.empty()) return fail("'@' without a body file path");
            auto body = read_body(path);
            if (!body)
                return fail("cannot read the body file '" + shown(path) + "' (missing, unreadable or bigger than " +
                            mib(max_body_file) + ")");
            body_bytes += body->size();
            if (body_bytes > max_bodies)
                return fail("the body files add up to more than " + mib(max_bodies) + " (each target keeps its own copy)");
            t.body = std::move(*body);
            t.body_path = std::move(path);
            continue;
        }

        // A header line's first word ends in ':' or is followed by one (a bad name, refused
        // below); a request line's first word, the method, has no ':'.
        const std::size_t first_end = std::min(line.find_first_of(" \t"), line.size());
        const std::string_view first = line.substr(0, first_end);
        const std::size_t colon = line.find(':');
        if (colon < first_end ||
            (colon != std::string_view::npos && trim(line.substr(first_end, colon - first_end)).empty())) {
            const std::string_view name = line.substr(0, colon);
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && blank(value.front())) value.remove_prefix(1);
            using boost::beast::iequals;
            if ((iequals(name, "http") || iequals(name, "https")) && value.starts_with("//"))
                return fail("a URL without a method: expected 'METHOD URL'");
            if (!open) return orphan("a header line");
            target& t = targets.back();
            if (!t.body_path.empty()) return fail("a header line after the body line: headers come first");
            if (!http::is_token(name))
                return fail("bad header name '" + shown(name) + "' (must be an RFC 9110 token)");
            if (!http::is_field_value(value))
                return fail("bad value for header " + std::string(name) +
                            ": CR, LF, NUL and other control characters are not allowed");
            t.headers.emplace_back(name, value);
            continue;
        }

        const auto method = boost::beast::http::string_to_verb(first);
        if (method == http::verb::unknown) {
            // Perhaps the rest of a header value folded onto this line (obs-fold): not echoed.
            if (open && indented)
                return fail("an indented line that is no header: folded header values are not supported");
            return fail(bad_method(first));
        }
        const std::string_view rest = trim(line.substr(first_end));
        if (rest.empty()) return fail(std::string(first) + " without a URL: expected 'METHOD URL'");
        const std::string_view url = rest.substr(0, std::min(rest.find_first_of(" \t"), rest.size()));
        if (url.size() != rest.size())
            return fail("text after the URL '" + http::redact_url(url) +
                        "': expected 'METHOD URL' (a URL has no spaces)");
        if (auto u = http::parse_url(url); !u)
            return fail("bad URL '" + http::redact_url(url) + "': " + u.error().message() +
                        " (expected an absolute http:// or https:// URL, without user info)");
        if (targets.size() == max_targets) return fail("more than " + std::to_string(max_targets) + " targets");
        targets.push_back(target{method, std::string(url), {}, {}, {}, 1, std::nullopt});
        open = true;
    }
    if (targets.empty()) return targets_error{file + ": no targets: expected 'METHOD URL' lines"};
    return targets;
}

std::variant<std::vector<target>, targets_error> load_targets(const std::string& path) {
    std::string why;
    auto text = read_file(path, max_targets_file, why);
    if (!text) return targets_error{"cannot read the targets file '" + shown(path) + "': " + why};
    return parse_targets(*text, path, [](const std::string& body_path) {
        std::string ignored;
        return read_file(body_path, max_body_file, ignored);
    });
}

std::optional<targets_error> apply_weights(std::vector<target>& targets, std::string_view weights) {
    std::vector<unsigned> parsed;
    for (std::size_t pos = 0;;) {
        const std::size_t comma = std::min(weights.find(',', pos), weights.size());
        const std::string_view field = weights.substr(pos, comma - pos);
        unsigned w = 0;
        const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), w);
        if (ec != std::errc() || end != field.data() + field.size() || w < 1 || w > 1000) {
            std::string what = "empty";
            if (!field.empty()) {
                what = "'";
                what += shown(field);
                what += "'";
            }
            return targets_error{"bad --weights: weight " + std::to_string(parsed.size() + 1) + " is " + what +
                                 " (each is a whole number from 1 to 1000)"};
        }
        parsed.push_back(w);
        if (comma == weights.size()) break;
        pos = comma + 1;
    }
    if (parsed.size() != targets.size())
        return targets_error{"bad --weights: " + std::to_string(parsed.size()) + " weights for " +
                             std::to_string(targets.size()) + " targets (give one per target, in file order)"};
    unsigned divisor = 0;
    std::uint64_t sum = 0;
    for (auto w : parsed) divisor = std::gcd(divisor, w);
    for (auto w : parsed) sum += w / divisor;
    if (sum > max_weights)
        return targets_error{"bad --weights: they add up to " + std::to_string(sum) + " turns per cycle (at most " +
                             std::to_string(max_weights) + " once divided by their greatest common divisor)"};
    for (std::size_t i = 0; i < targets.size(); ++i) targets[i].weight = parsed[i];
    return std::nullopt;
}

} // namespace tokenflight::load
