// Private to tokenflight: one HTTP/1.1 exchange on any stream (TCP, TLS, or a fuzzer's fake
// stream): write the request, read the response within the limits, classify what went wrong.
#ifndef TOKENFLIGHT_SRC_HTTP_EXCHANGE_HPP
#define TOKENFLIGHT_SRC_HTTP_EXCHANGE_HPP

#include <tokenflight/error.hpp>
#include <tokenflight/http/message.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <string>

#include <cstddef>
#include <cstdint>

namespace tokenflight::http::detail {

/// Maps stream, parser and timer errors to tokenflight's errors (others pass through).
inline error_code map_transport_error(const error_code& ec, bool timeout_is_connect) {
    namespace asio = boost::asio;
    using be = boost::beast::http::error;
    if (ec == boost::beast::error::timeout) return timeout_is_connect ? errc::connect_timeout : errc::request_timeout;
    if (ec == be::header_limit) return errc::header_too_large;
    if (ec == be::body_limit) return errc::body_too_large;
    if (ec == be::end_of_stream || ec == be::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == asio::ssl::error::stream_truncated)
        return errc::connection_closed;
    return ec;
}

struct exchange_limits {
    std::size_t header_limit = 16 * 1024;
    std::size_t body_limit = 8 * 1024 * 1024;
};

struct exchange_result {
    error_code ec;
    response res;
    bool got_bytes = false; ///< any response byte arrived (a resend is no longer safe)
    bool reusable = false;  ///< the connection may carry another request
};

/// Writes `req` and reads one response from `stream`, leftover bytes staying in `buffer`.
template <class Stream>
boost::asio::awaitable<exchange_result> exchange_on(Stream& stream, boost::beast::flat_buffer& buffer,
                                                    const request& req, exchange_limits limits) {
    namespace asio = boost::asio;
    namespace bhttp = boost::beast::http;
    constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
    exchange_result out;
    // The request head is serialised into one string and written with the body in a single
    // gather write: Beast's generic serializer walks nested buffer sequences, which costs more
    // than the syscall on the fan-out hot path. Requests always carry Content-Length here.
    std::string head;
    head.reserve(256);
    head += req.method_string();
    head += ' ';
    head += req.target();
    head += " HTTP/1.1\r\n";
    for (const auto& f : req) {
        head += f.name_string();
        head += ": ";
        head += f.value();
        head += "\r\n";
    }
    head += "\r\n";
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(req.body())};
    auto [wec, wn] = co_await asio::async_write(stream, bufs, tuple_awaitable);
    if (wec) {
        out.ec = map_transport_error(wec, false);
        co_return std::move(out); // GCC 12 copies a named co_return operand
    }
    const auto before = buffer.size();
    // Interim 1xx responses (100 Continue, 103 Early Hints) precede the real one: skip them, a
    // bounded number of times. 101 Switching Protocols is final (and not reusable).
    for (int interim = 0;; ++interim) {
        bhttp::response_parser<bhttp::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
        parser.body_limit(limits.body_limit);
        if (req.method() == verb::head) parser.skip(true);
        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
        out.got_bytes = out.got_bytes || rn > 0 || buffer.size() > before;
        if (rec) {
            out.ec = map_transport_error(rec, false);
            co_return std::move(out); // GCC 12 copies a named co_return operand
        }
        const unsigned status = parser.get().result_int();
        if (status >= 100 && status < 200 && status != 101) {
            if (interim < 8) continue;
            out.ec = errc::connection_closed; // a server that only ever says "wait": give up
            co_return std::move(out);
        }
        // The parser knows whether the body ended with the connection (no length, no chunking):
        // such a connection is finished even without "Connection: close".
        // Bytes left over (a body on a HEAD/204/304, more than Content-Length) would be read as
        // the next caller's response: such a connection is not reused.
        out.reusable = parser.keep_alive() && req.keep_alive() && status != 101 && buffer.size() == 0;
        out.res = parser.release();
        break;
    }
    co_return std::move(out); // GCC 12 copies a named co_return operand
}

} // namespace tokenflight::http::detail

#endif
