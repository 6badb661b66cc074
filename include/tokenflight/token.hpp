#ifndef TOKENFLIGHT_TOKEN_HPP
#define TOKENFLIGHT_TOKEN_HPP

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

/// @file
/// The access token handle that token sources hand out.

namespace tokenflight {
namespace detail {
struct access;
}

/// The clock every tokenflight deadline is measured on.
using clock = std::chrono::steady_clock;

/// An immutable OAuth 2.0 access token. Copying is one atomic increment: tokens are handed to
/// tens of thousands of requests, so the value is shared, never copied.
///
/// `expires_at` is measured from when the token request was *sent*, so network latency can only
/// make tokenflight think a token expires earlier than it does.
///
/// Streaming a token prints its type, a redacted value (see redacted()) and its generation.
///
/// @par Thread safety
/// Safe to copy and read from any thread.
class access_token {
public:
    /// What a token is made of. Token sources make them; tests may too.
    struct data {
        /// The access token itself: a secret.
        std::string value;
        std::string type;              ///< `token_type` as sent (usually "Bearer")
        std::string scope;             ///< granted scope as sent, may be empty
        clock::time_point issued_at;   ///< when the token request was sent
        clock::time_point refresh_at;  ///< from here on the token is stale: refresh in background
        clock::time_point usable_until;///< expires_at minus the clock-skew margin
        clock::time_point expires_at;  ///< issued_at + lifetime
        std::uint64_t generation = 0;  ///< 1, 2, 3... one per successful fetch of a source (0: none)
    };

    /// An empty token.
    access_token() = default;
    /// A token holding `d`.
    explicit access_token(std::shared_ptr<const data> d) noexcept : d_(std::move(d)) {}

    /// False for a default-constructed (empty) token.
    explicit operator bool() const noexcept { return d_ != nullptr; }

    // The accessors below require a non-empty token.
    std::string_view value() const noexcept { return d_->value; }        ///< data::value
    std::string_view type() const noexcept { return d_->type; }          ///< data::type
    std::string_view scope() const noexcept { return d_->scope; }        ///< data::scope
    clock::time_point issued_at() const noexcept { return d_->issued_at; }       ///< data::issued_at
    clock::time_point refresh_at() const noexcept { return d_->refresh_at; }     ///< data::refresh_at
    clock::time_point usable_until() const noexcept { return d_->usable_until; } ///< data::usable_until
    clock::time_point expires_at() const noexcept { return d_->expires_at; }     ///< data::expires_at
    std::uint64_t generation() const noexcept { return d_->generation; }         ///< data::generation

    /// A loggable form of the value: its length, and its first 6 characters only when it is
    /// longer than 24 (a short token shows nothing of itself); "<none>" for an empty token.
    std::string redacted() const;

    /// Prints `access_token{<type> <redacted()>, generation <g>}`, never the value.
    friend std::ostream& operator<<(std::ostream& os, const access_token& t);

private:
    friend struct detail::access;
    std::shared_ptr<const data> d_;
};

} // namespace tokenflight

#endif
