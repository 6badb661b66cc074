#include <tokenflight/http/header_syntax.hpp>

#include <boost/beast/core/string.hpp>

#include <array>

namespace tokenflight::http {

namespace {

constexpr std::array<bool, 256> make_tchar_table() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr auto tchar = make_tchar_table();

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

void append(std::string& out, std::string_view a) { out.append(a.data(), a.size()); }

} // namespace

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!tchar[c]) return false;
    return true;
}

bool is_field_value(std::string_view s) noexcept {
    for (unsigned char c : s)
        if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
    return true;
}

bool is_visible_ascii(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7E) return false;
    return true;
}

bool is_request_target(std::string_view s) noexcept { return is_visible_ascii(s); }

void chunked_coding_list::add(std::string_view v) noexcept {
    // RFC 9112 section 6.1: repeated fields form one list; chunked must be last, and only once.
    for (;;) {
        const auto comma = v.find(',');
        const auto element = trim_ows(v.substr(0, comma));
        if (!element.empty()) { // empty list elements are allowed (RFC 9110 section 5.6.1)
            if (last_is_chunked_ || !is_token(element)) valid_ = false;
            last_is_chunked_ = boost::beast::iequals(element, "chunked");
            any_ = true;
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
}

bool is_chunked_coding_list(const response& res) noexcept {
    chunked_coding_list list;
    for (auto [it, end] = res.equal_range(field::transfer_encoding); it != end; ++it) list.add(it->value());
    return list.chunked_last_only();
}

error_code serialize_request_head(const request& req, std::string& out) {
    out.clear();
    const std::string_view method = req.method_string();
    if (!is_token(method)) return errc::invalid_method;
    const std::string_view target = req.target();
    if (!is_request_target(target)) return errc::invalid_request_target;
    std::size_t size = method.size() + target.size() + 14;
    for (const auto& f : req) {
        if (!is_token(f.name_string())) return errc::invalid_header_name;
        if (!is_field_value(f.value())) return errc::invalid_header_value;
        size += f.name_string().size() + f.value().size() + 4;
    }
    out.reserve(size);
    append(out, method);
    out += ' ';
    append(out, target);
    append(out, " HTTP/1.1\r\n");
    for (const auto& f : req) {
        append(out, f.name_string());
        append(out, ": ");
        append(out, f.value());
        append(out, "\r\n");
    }
    append(out, "\r\n");
    return {};
}

} // namespace tokenflight::http
