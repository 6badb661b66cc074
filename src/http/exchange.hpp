// Private to tokenflight: one HTTP/1.1 exchange on any stream (TCP, TLS, or a fuzzer's fake
// stream): write the request, read the response within the limits, classify what went wrong.
#ifndef TOKENFLIGHT_SRC_HTTP_EXCHANGE_HPP
#define TOKENFLIGHT_SRC_HTTP_EXCHANGE_HPP

#include "brief_parser.hpp"
#include "prepared.hpp"

#include <tokenflight/error.hpp>
#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/http/message.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
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
#include <optional>
#include <string>
#include <string_view>

#include <cstddef>
#include <cstdint>

namespace tokenflight::http::detail {

/// Where a transport error happened: it decides what a timeout means.
enum class transport_phase { connect, exchange };

/// Maps stream, parser and timer errors to tokenflight's errors (others pass through).
inline error_code map_transport_error(const error_code& ec, transport_phase phase) {
    namespace asio = boost::asio;
    using be = boost::beast::http::error;
    if (ec == boost::beast::error::timeout) return phase == transport_phase::connect ? errc::connect_timeout : errc::request_timeout;
    // A full read buffer means a header line, chunk line or trailer section longer than the buffer.
    if (ec == be::header_limit || ec == be::buffer_overflow) return errc::header_too_large;
    if (ec == be::body_limit) return errc::body_too_large;
    if (ec == be::end_of_stream || ec == be::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == asio::ssl::error::stream_truncated)
        return errc::connection_closed;
    return ec;
}

struct exchange_limits {
    /// Response head bytes, shared by every interim 1xx head, the final head, chunk extensions and
    /// trailers of one exchange.
    std::size_t header_limit = 16 * 1024;
    std::size_t body_limit = 8 * 1024 * 1024;
};

/// The read buffer's hard cap: a head (or one chunk line, or the trailer section) must fit in it
/// whole; body bytes only pass through it. Whatever a server sends, a connection holds no more.
constexpr std::size_t read_buffer_cap(const exchange_limits& l) noexcept { return l.header_limit + 16 * 1024; }

/// Bytes of a response head as sent, counting the fields now in `res` (trailers are added to the
/// fields by the parser): the measure the header limit is charged with.
inline std::size_t head_bytes(const response& res) noexcept {
    std::size_t n = 15 + res.reason().size(); // "HTTP/1.1 200 " ... CRLF, and the blank line
    for (const auto& f : res) n += f.name_string().size() + f.value().size() + 4;
    return n;
}

/// How an exchange ended, apart from the response itself.
struct exchange_status {
    error_code ec;
    bool got_bytes = false; ///< any response byte arrived (a resend is no longer safe)
    bool sent = false;      ///< any request byte was handed to the stream
    bool reusable = false;  ///< the connection may carry another request
};

template <class Result>
struct exchange_result : exchange_status {
    Result res;
};

/// How an exchange reads a response: into an owning http::response (Beast's parser: fields and
/// body allocated) ...
class full_reader {
public:
    using result_type = response;
    explicit full_reader(std::size_t& head_budget) : charge_{head_budget} { parser_.on_chunk_header(charge_); }
    boost::beast::http::basic_parser<false>& parser() noexcept { return parser_; }
    unsigned status() const { return parser_.get().result_int(); }
    /// Head and trailer fields together (the parser appended the trailers).
    std::size_t head_size() const { return head_bytes(parser_.get()); }
    bool clean_framing() const {
        const auto& res = parser_.get();
        const bool has_te = res.find(field::transfer_encoding) != res.end();
        return !has_te || (res.version() >= 11 && is_chunked_coding_list(res));
    }
    result_type release() { return parser_.release(); }

private:
    // Chunk extensions are head bytes too: without this charge, `1;ext=...` repeated forever
    // would stream past every limit (the body limit counts chunk data only).
    struct charge {
        std::size_t& budget;
        void operator()(std::uint64_t, boost::beast::string_view extensions, error_code& ec) const {
            if (extensions.size() > budget)
                ec = boost::beast::http::error::header_limit;
            else
                budget -= extensions.size();
        }
    };
    charge charge_; // the parser keeps a reference: declared first, destroyed last
    boost::beast::http::response_parser<boost::beast::http::string_body> parser_;
};

/// ... or into a brief_response (nothing stored, nothing allocated for a 2xx).
class brief_reader {
public:
    using result_type = brief_response;
    explicit brief_reader(std::size_t& head_budget) : parser_(head_budget) {}
    boost::beast::http::basic_parser<false>& parser() noexcept { return parser_; }
    unsigned status() noexcept { return parser_.get().status; }
    std::size_t head_size() const noexcept { return parser_.head_size(); }
    bool clean_framing() const noexcept { return parser_.clean_framing(); }
    result_type release() noexcept { return parser_.release(); }

private:
    brief_parser parser_;
};

/// The state of one exchange that must stay put while it runs (the parser is read into by
/// reference): kept by the caller, reused from exchange to exchange (a pooled connection keeps one
/// per reader).
template <class Reader>
struct exchange_state {
    std::optional<Reader> reader;
    std::size_t head_budget = 0;
    std::size_t before = 0;
    int interim = 0;
    bool reading = false;
    exchange_status out;
};

/// The exchange as a composed operation: one gather write of `w`, then reads of one response with
/// a `Reader` into `res`, leftover bytes staying in `buffer`. Memory is bounded by
/// read_buffer_cap() and the body limit; time is bounded by the caller (the pool closes the
/// stream at its deadline). Not a coroutine: a pooled connection runs it with a handler that
/// carries the connection's own allocator, so a request allocates nothing here.
template <class Reader, class Stream, class Handler>
class exchange_operation {
public:
    using result_type = typename Reader::result_type;

    exchange_operation(Stream& stream, boost::beast::flat_buffer& buffer, const wire_request& w, exchange_limits limits,
                       result_type& res, exchange_state<Reader>& st, Handler handler)
        : stream_(stream), buffer_(buffer), w_(&w), limits_(limits), res_(&res), st_(&st), handler_(std::move(handler)) {}

    using executor_type = boost::asio::associated_executor_t<Handler, typename Stream::executor_type>;
    executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(handler_, stream_.get_executor()); }
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    allocator_type get_allocator() const noexcept { return boost::asio::get_associated_allocator(handler_); }

    void start() {
        st_->out = exchange_status{};
        st_->reading = false;
        // Head and body in one gather write: Beast's generic serializer walks nested buffer
        // sequences, which costs more than the syscall on the fan-out hot path. Requests always
        // carry Content-Length here.
        st_->out.sent = true;
        boost::asio::async_write(stream_, w_->parts, std::move(*this));
    }

    void operator()(error_code ec, std::size_t n) {
        auto& st = *st_;
        if (!st.reading) {
            if (ec) return finish(map_transport_error(ec, transport_phase::exchange));
            // A handler that wants to know (the pool's loop, for pool_event::request_sent).
            if constexpr (requires(const Handler& h) { h.on_written(); }) handler_.on_written();
            st.reading = true;
            st.before = buffer_.size();
            buffer_.max_size(read_buffer_cap(limits_));
            st.head_budget = limits_.header_limit;
            st.interim = 0;
            return read();
        }
        st.out.got_bytes = st.out.got_bytes || n > 0 || buffer_.size() > st.before;
        if (ec) return finish(map_transport_error(ec, transport_phase::exchange));
        auto& reader = *st.reader;
        const std::size_t head_size = reader.head_size();
        if (head_size > st.head_budget) return finish(errc::header_too_large);
        st.head_budget -= head_size;
        const unsigned status = reader.status();
        // Interim 1xx responses (100 Continue, 103 Early Hints) precede the real one: skip them, a
        // bounded number of times, charging their heads to the same budget. 101 Switching
        // Protocols is final (and not reusable).
        if (status >= 100 && status < 200 && status != 101) {
            if (st.interim++ < 8) return read();
            return finish(errc::connection_closed); // a server that only ever says "wait": give up
        }
        // The parser knows whether the body ended with the connection (no length, no chunking):
        // such a connection is finished even without "Connection: close".
        // Bytes left over (a body on a HEAD/204/304, more than Content-Length) would be read as
        // the next caller's response: such a connection is not reused. Neither is one whose
        // Transfer-Encoding is anything but a clean coding list ending in chunked: the parser may
        // read such a body one way and a proxy on the path another.
        // An HTTP/1.0 message with a Transfer-Encoding has faulty framing (RFC 9112 section 6.1):
        // close after it.
        st.out.reusable = reader.parser().keep_alive() && w_->keep_alive && status != 101 && buffer_.size() == 0 &&
                          reader.clean_framing();
        *res_ = reader.release();
        finish({});
    }

private:
    void read() {
        auto& st = *st_;
        auto& reader = st.reader.emplace(st.head_budget);
        auto& parser = reader.parser();
        if (st.head_budget == 0) return finish(errc::header_too_large);
        parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(st.head_budget, UINT32_MAX)));
        parser.body_limit(limits_.body_limit);
        if (w_->method == verb::head) parser.skip(true);
        boost::beast::http::async_read(stream_, buffer_, parser, std::move(*this));
    }

    // Always from a completion of this operation's own I/O, on the handler's executor.
    void finish(error_code ec) {
        st_->out.ec = ec;
        st_->reader.reset();
        handler_(st_->out);
    }

    Stream& stream_;
    boost::beast::flat_buffer& buffer_;
    const wire_request* w_;
    exchange_limits limits_;
    result_type* res_;
    exchange_state<Reader>* st_;
    Handler handler_;
};

/// Starts an exchange_operation; `handler` is called with the exchange_status. `w`, `res`,
/// `st`, `stream` and `buffer` must stay valid until then.
template <class Reader, class Stream, class Handler>
void start_exchange(Stream& stream, boost::beast::flat_buffer& buffer, const wire_request& w, exchange_limits limits,
                    typename Reader::result_type& res, exchange_state<Reader>& st, Handler handler) {
    exchange_operation<Reader, Stream, Handler>(stream, buffer, w, limits, res, st, std::move(handler)).start();
}

/// The exchange for a coroutine (the fuzz targets), returning the response with the status.
template <class Reader, class Stream>
boost::asio::awaitable<exchange_result<typename Reader::result_type>>
exchange_on(Stream& stream, boost::beast::flat_buffer& buffer, const wire_request& w, exchange_limits limits) {
    exchange_result<typename Reader::result_type> out;
    exchange_state<Reader> st;
    auto op = boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(exchange_status)>(
        [&](auto handler) { start_exchange<Reader>(stream, buffer, w, limits, out.res, st, std::move(handler)); },
        boost::asio::use_awaitable);
    static_cast<exchange_status&>(out) = co_await std::move(op);
    co_return std::move(out); // GCC 12 copies a named co_return operand
}

/// The wire form of a serialised head (from serialize_request_head) and `req`'s body.
inline wire_request wire_of(std::string_view head, const request& req) noexcept {
    wire_request w;
    w.parts[0] = boost::asio::buffer(head.data(), head.size());
    w.parts[3] = boost::asio::buffer(req.body());
    w.method = req.method();
    w.keep_alive = req.keep_alive();
    return w;
}

/// exchange_on() for a request not yet serialised, read into a full response: checks and
/// serialises its head first; a bad head is an error and nothing is written.
template <class Stream>
boost::asio::awaitable<exchange_result<response>> exchange_on(Stream& stream, boost::beast::flat_buffer& buffer,
                                                              const request& req, exchange_limits limits) {
    std::string head;
    if (auto ec = serialize_request_head(req, head)) {
        exchange_result<response> out;
        out.ec = ec;
        out.reusable = true; // nothing was written or read
        co_return std::move(out);
    }
    const auto w = wire_of(head, req);
    co_return co_await exchange_on<full_reader>(stream, buffer, w, limits);
}

} // namespace tokenflight::http::detail

#endif
