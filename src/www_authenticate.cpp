#include <tokenflight/www_authenticate.hpp>

namespace tokenflight {

namespace {

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}

bool is_token68_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/';
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

class cursor {
public:
    explicit cursor(std::string_view s) : s_(s) {}
    bool done() const { return i_ >= s_.size(); }
    char peek(std::size_t ahead = 0) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }
    void skip_ws() {
        while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
    }
    void skip_ws_and_commas() {
        while (!done() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
    }
    std::string_view token() {
        const auto b = i_;
        while (!done() && is_tchar(s_[i_])) ++i_;
        return s_.substr(b, i_ - b);
    }
    // quoted-string with backslash escapes; false when unterminated
    bool quoted(std::string& out) {
        ++i_; // opening quote
        while (!done()) {
            const char c = s_[i_++];
            if (c == '"') return true;
            if (c == '\\' && !done()) {
                out += s_[i_++];
            } else {
                out += c;
            }
        }
        return false;
    }
    std::size_t pos() const { return i_; }
    void seek(std::size_t p) { i_ = p; }

    // After the scheme: is what follows a token68 (e.g. "abc==") rather than an auth-param list?
    bool at_token68() const {
        std::size_t j = i_;
        while (j < s_.size() && is_token68_char(s_[j])) ++j;
        if (j == i_) return false;
        while (j < s_.size() && s_[j] == '=') ++j;
        // A token68 ends the challenge: only blanks, then a comma or the end, may follow. So
        // "realm=x" (more characters after '=') is an auth-param, "abc==" is a token68.
        std::size_t k = j;
        while (k < s_.size() && (s_[k] == ' ' || s_[k] == '\t')) ++k;
        return k == s_.size() || s_[k] == ',';
    }

private:
    std::string_view s_;
    std::size_t i_ = 0;
};

} // namespace

std::string_view challenge::param(std::string_view name) const noexcept {
    for (const auto& [n, v] : params)
        if (iequals(n, name)) return v;
    return {};
}

std::vector<challenge> parse_www_authenticate(std::string_view header) {
    std::vector<challenge> out;
    cursor c(header);
    for (;;) {
        c.skip_ws_and_commas();
        if (c.done()) break;
        auto scheme = c.token();
        if (scheme.empty()) break; // not a challenge: stop with what we have
        challenge ch;
        ch.scheme = scheme;
        c.skip_ws();
        if (!c.done() && c.peek() != ',' && c.at_token68()) {
            const auto b = c.pos();
            while (!c.done() && (is_token68_char(c.peek()) || c.peek() == '=')) c.seek(c.pos() + 1);
            ch.token68 = std::string(header.substr(b, c.pos() - b));
            out.push_back(std::move(ch));
            continue;
        }
        // auth-params: name = (token | quoted-string), separated by commas. A name not followed
        // by '=' is the next challenge's scheme.
        for (;;) {
            c.skip_ws_and_commas();
            const auto mark = c.pos();
            auto name = c.token();
            if (name.empty()) break;
            c.skip_ws();
            if (c.peek() != '=') {
                c.seek(mark);
                break;
            }
            c.seek(c.pos() + 1);
            c.skip_ws();
            std::string value;
            if (c.peek() == '"') {
                if (!c.quoted(value)) {
                    out.push_back(std::move(ch));
                    return out; // unterminated quote: nothing after it can be trusted
                }
            } else {
                value = c.token();
            }
            std::string lname(name);
            for (auto& ch2 : lname) ch2 = lower(ch2);
            ch.params.emplace_back(std::move(lname), std::move(value));
        }
        out.push_back(std::move(ch));
    }
    return out;
}

const challenge* find_challenge(const std::vector<challenge>& challenges, std::string_view scheme) noexcept {
    for (const auto& ch : challenges)
        if (iequals(ch.scheme, scheme)) return &ch;
    return nullptr;
}

} // namespace tokenflight
