#ifndef TOKENFLIGHT_HTTP_HEADER_SYNTAX_HPP
#define TOKENFLIGHT_HTTP_HEADER_SYNTAX_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/http/message.hpp>

#include <string>
#include <string_view>

/// @file
/// RFC 9110 header syntax checks, and the one place a request head becomes bytes.
///
/// Every byte of a request head passes through serialize_request_head(), which refuses anything
/// that could end a header line or the head early (CR, LF, NUL, other controls): a token from a
/// server, a default header from configuration or a `-H` from a command line cannot inject a
/// header or smuggle a second request, whoever built the request.

namespace tokenflight::http {

/// RFC 9110 section 5.6.2 `token`: one or more of ``!#$%&'*+-.^_`|~``, digits and letters.
bool is_token(std::string_view s) noexcept;

/// RFC 9110 section 5.5 field value, as tokenflight sends them: no control character (0x00-0x1F,
/// 0x7F) except horizontal tab. Bytes 0x80-0xFF (obs-text) pass.
bool is_field_value(std::string_view s) noexcept;

/// One or more visible ASCII characters (0x21-0x7E): what an access token may hold, since it
/// goes into a header line (one CR, LF or NUL would inject a header or a request).
bool is_visible_ascii(std::string_view s) noexcept;

/// An RFC 9112 request-target in origin or absolute form: visible ASCII (0x21-0x7E) only.
bool is_request_target(std::string_view s) noexcept;

/// A Transfer-Encoding field list (all fields, in order) that is exactly a comma-separated list
/// of codings ending in `chunked`, with `chunked` nowhere else: a body framed so that the
/// connection can carry another message. Parameters (`;q=...`) and anything else: false.
bool is_chunked_coding_list(const response& res) noexcept;

/// is_chunked_coding_list() fed one Transfer-Encoding field value at a time, for parsers that
/// keep no fields.
class chunked_coding_list {
public:
    /// Adds the codings of one more Transfer-Encoding field value, in the order received.
    void add(std::string_view field_value) noexcept;
    /// At least one coding, `chunked` last and nowhere else, every element a token.
    bool chunked_last_only() const noexcept { return valid_ && any_ && last_is_chunked_; }

private:
    bool valid_ = true;
    bool any_ = false;
    bool last_is_chunked_ = false;
};

/// Serialises `req`'s request line and header fields, and the blank line ending the head, into
/// `out` (replacing its contents). Checks every part first: errc::invalid_method,
/// errc::invalid_request_target, errc::invalid_header_name or errc::invalid_header_value, and
/// then `out` is left empty.
error_code serialize_request_head(const request& req, std::string& out);

} // namespace tokenflight::http

#endif
