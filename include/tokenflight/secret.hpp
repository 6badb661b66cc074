#ifndef TOKENFLIGHT_SECRET_HPP
#define TOKENFLIGHT_SECRET_HPP

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

/// @file
/// A string that keeps a credential out of logs and out of freed memory.

/// OAuth 2.0 client-credentials tokens and the requests authorized with them.
namespace tokenflight {

/// Holds a client secret (or any credential).
///
/// - Streams and formats as `***`; there is no implicit conversion to a string. The value is
///   reached only through reveal(), which is easy to grep for.
/// - The bytes are wiped with `OPENSSL_cleanse` when the secret is destroyed, assigned over or
///   moved from.
///
/// Thread safety: distinct objects safe; shared const objects safe.
class secret {
public:
    /// An empty secret.
    secret() = default;
    /// Copies `value`; wiping the caller's own copy is up to the caller.
    explicit secret(std::string_view value);
    /// Copies the value.
    secret(const secret& other);
    /// Takes the value's buffer itself, leaving no copy of the bytes behind; `other` is left empty.
    secret(secret&& other) noexcept;
    /// Wipes the old value, then copies `other`'s.
    secret& operator=(const secret& other);
    /// Wipes the old value, then takes `other`'s buffer; `other` is left empty.
    secret& operator=(secret&& other) noexcept;
    /// Wipes the value.
    ~secret();

    /// The secret itself. Never log what this returns.
    std::string_view reveal() const noexcept { return value_; }
    /// True when there is no value.
    bool empty() const noexcept { return value_.empty(); }
    /// Wipes and empties.
    void clear() noexcept;

    /// True for equal values. Values of one length compare in constant time; lengths are not
    /// hidden.
    friend bool operator==(const secret& a, const secret& b) noexcept;
    /// Writes `***`, never the value.
    friend std::ostream& operator<<(std::ostream& os, const secret& s);

private:
    std::string value_;
};

/// Replaces every occurrence of `s` in `text` by `***`, also in the forms a server may echo it
/// in: form-urlencoded (either hex case), JSON-escaped and base64. No-op for an empty secret.
/// Used on anything a server sends back before it reaches an error message.
void scrub(std::string& text, const secret& s);

/// Masks one client's credential out of text: the secret in every form scrub() knows, and the
/// HTTP Basic credential built from it (base64 of `id:secret`, with and without the
/// form-urlencoding of RFC 6749 section 2.3.1), which a server echoing the request's
/// Authorization header would hand back. The forms are computed once and wiped on destruction.
///
/// Thread safety: apply() may be called concurrently on a shared const redactor.
class redactor {
public:
    /// Masks nothing.
    redactor() = default;
    /// From a secret alone (no Basic credential forms): lets a secret stand where a redactor is asked for.
    redactor(const secret& s); // NOLINT(google-explicit-constructor)
    /// The forms of `s`, and the HTTP Basic credential of `client_id` with `s`.
    redactor(const secret& s, std::string_view client_id);

    /// Replaces every form in `text` by `***`.
    void apply(std::string& text) const;

    /// A copy that also masks `extra` in every form scrub() knows (e.g. a client assertion sent
    /// with one request, which a server might echo).
    redactor with(const secret& extra) const;

private:
    std::vector<secret> forms_; // longest first, so that a form containing another is masked whole
};

} // namespace tokenflight

#endif
