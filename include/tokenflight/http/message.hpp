#ifndef TOKENFLIGHT_HTTP_MESSAGE_HPP
#define TOKENFLIGHT_HTTP_MESSAGE_HPP

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

/// @file
/// The HTTP message types tokenflight sends and receives: Beast's, with string bodies.

namespace tokenflight::http {

namespace beast_http = boost::beast::http;

/// An HTTP request with its body in a string.
using request = beast_http::request<beast_http::string_body>;
/// An HTTP response with its body in a string.
using response = beast_http::response<beast_http::string_body>;
using beast_http::field;
using beast_http::status;
using beast_http::verb;

/// True for methods that RFC 9110 calls idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE).
constexpr bool is_idempotent(verb v) noexcept {
    return v == verb::get || v == verb::head || v == verb::put || v == verb::delete_ ||
           v == verb::options || v == verb::trace;
}

} // namespace tokenflight::http

#endif
