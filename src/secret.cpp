#include <tokenflight/secret.hpp>

#include <tokenflight/token_endpoint.hpp>

#include <openssl/crypto.h>

#include <algorithm>

#include <array>
#include <ostream>

namespace tokenflight {

namespace {
void wipe(std::string& s) noexcept {
    // Covers both the heap buffer and the small-string buffer inside the object.
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}
// Always on the heap (a capacity above any small-string buffer) and never reallocated, so a move
// hands the one buffer over and no unwiped copy of the bytes is left behind anywhere.
std::string heap_copy(std::string_view v) {
    std::string s;
    s.reserve(v.size() < 32 ? 32 : v.size());
    s.append(v);
    return s;
}
} // namespace

secret::secret(std::string_view value) : value_(heap_copy(value)) {}
secret::secret(const secret& other) : value_(heap_copy(other.value_)) {}
secret::secret(secret&& other) noexcept : value_(std::move(other.value_)) { other.value_.clear(); }

secret& secret::operator=(const secret& other) {
    if (this != &other) {
        wipe(value_);
        value_ = heap_copy(other.value_);
    }
    return *this;
}

secret& secret::operator=(secret&& other) noexcept {
    if (this != &other) {
        wipe(value_);
        value_.swap(other.value_); // both heap buffers: pointers swap, bytes stay put
        other.value_.clear();
    }
    return *this;
}

secret::~secret() { wipe(value_); }

void secret::clear() noexcept { wipe(value_); }

bool operator==(const secret& a, const secret& b) noexcept {
    if (a.value_.size() != b.value_.size()) return false;
    return CRYPTO_memcmp(a.value_.data(), b.value_.data(), a.value_.size()) == 0;
}

std::ostream& operator<<(std::ostream& os, const secret&) { return os << "***"; }

namespace {
void mask(std::string& text, std::string_view v) {
    if (v.empty()) return;
    for (auto pos = text.find(v); pos != std::string::npos; pos = text.find(v, pos + 3))
        text.replace(pos, v.size(), "***");
}
// As the secret travels in a form body, and as a server may echo it: percent-encoded (in either
// case of hex digits) or JSON-escaped.
enum class hex_case { upper, lower };

std::string percent_encoded(std::string_view v, hex_case letters) {
    const char* hex_digits = letters == hex_case::upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    for (unsigned char c : v) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '*')
            out += static_cast<char>(c);
        else if (c == ' ')
            out += '+';
        else {
            out += '%';
            out += hex_digits[c >> 4];
            out += hex_digits[c & 15];
        }
    }
    return out;
}
std::string json_escaped(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '/' || c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}
} // namespace

namespace {
// Base64 without its padding: a prefix of the padded form too, so masking it masks both.
std::string unpadded_base64(std::string_view v) {
    std::string b = base64_encode(v);
    while (!b.empty() && b.back() == '=') b.pop_back();
    return b;
}

// `v` as it is and as a server may echo it: form-urlencoded (either hex case) and JSON-escaped.
void add_echo_forms(std::vector<secret>& forms, std::string_view v) {
    std::array<std::string, 4> variants{std::string(v), percent_encoded(v, hex_case::upper), percent_encoded(v, hex_case::lower),
                                        json_escaped(v)};
    for (auto& variant : variants) {
        if (!variant.empty() && std::find(forms.begin(), forms.end(), secret(variant)) == forms.end())
            forms.emplace_back(variant);
        OPENSSL_cleanse(variant.data(), variant.size());
    }
}

// Every echo form of `v` and of its base64, padded or not (base64's '+', '/' and '=' change
// under form-urlencoding and JSON escaping too).
void add_secret_forms(std::vector<secret>& forms, std::string_view v) {
    add_echo_forms(forms, v);
    std::array<std::string, 2> encoded{base64_encode(v), unpadded_base64(v)};
    for (auto& b : encoded) {
        add_echo_forms(forms, b);
        OPENSSL_cleanse(b.data(), b.size());
    }
}
} // namespace

void scrub(std::string& text, const secret& s) { redactor(s).apply(text); }

redactor::redactor(const secret& s) {
    if (s.empty()) return;
    add_secret_forms(forms_, s.reveal());
    std::sort(forms_.begin(), forms_.end(),
              [](const secret& a, const secret& b) { return a.reveal().size() > b.reveal().size(); });
}

redactor::redactor(const secret& s, std::string_view client_id) : redactor(s) {
    if (s.empty()) return;
    // The Basic credential as tokenflight sends it (form-urlencoded id and secret) and as other
    // clients do (raw): a server echoing the Authorization header echoes one of them.
    // Built by appending into reserved buffers, every one wiped: no unwiped temporary copy.
    std::string encoded_secret = form_urlencode(s.reveal());
    std::array<std::string, 2> pairs;
    for (auto& p : pairs) p.reserve(3 * client_id.size() + 1 + encoded_secret.size() + s.reveal().size());
    pairs[0].append(form_urlencode(client_id)).append(1, ':').append(encoded_secret);
    pairs[1].append(client_id).append(1, ':').append(s.reveal());
    OPENSSL_cleanse(encoded_secret.data(), encoded_secret.size());
    for (auto& pair : pairs) {
        std::array<std::string, 2> encoded{base64_encode(pair), unpadded_base64(pair)};
        for (auto& b : encoded) {
            add_echo_forms(forms_, b);
            OPENSSL_cleanse(b.data(), b.size());
        }
        OPENSSL_cleanse(pair.data(), pair.size());
    }
    std::sort(forms_.begin(), forms_.end(),
              [](const secret& a, const secret& b) { return a.reveal().size() > b.reveal().size(); });
}

redactor redactor::with(const secret& extra) const {
    redactor r = *this;
    if (extra.empty()) return r;
    add_secret_forms(r.forms_, extra.reveal());
    std::sort(r.forms_.begin(), r.forms_.end(),
              [](const secret& a, const secret& b) { return a.reveal().size() > b.reveal().size(); });
    return r;
}

void redactor::apply(std::string& text) const {
    for (const auto& f : forms_) mask(text, f.reveal());
}

} // namespace tokenflight
