// Fuzzes the HTTP/1.1 transport: the bytes a server sends back, read by exchange_on() (the
// function the connection pool runs on its TCP and TLS streams) from a Beast test stream.
//
// Input: two control bytes, then the server's bytes.
//   byte 0: bit 7 = the request is HEAD (else POST), bit 6 = the request says Connection: close,
//           bits 0-5 = the most bytes one read_some() returns (0: no limit)
//   byte 1: the server sends its bytes in pieces of this size, letting the client run in
//           between, so reads wait for data that has not arrived yet (0: all at once)
// After its bytes the server closes its end, so every read ends (with EOF at the latest). While
// an exchange succeeds on a reusable connection, another request is sent on it and reads what
// is left (pipelined responses), up to three exchanges.
#include "fuzz_check.hpp"
#include "http/exchange.hpp"

#include <tokenflight/error.hpp>
#include <tokenflight/http/message.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace th = tokenflight::http;
using th::detail::exchange_limits;
using exchange_result = th::detail::exchange_result<th::response>;

// Small enough that inputs of a few KiB reach both limits with real bytes.
constexpr exchange_limits limits{1024, 2048};
constexpr int max_exchanges = 3;

// The server: sends `bytes` in pieces of `piece` bytes (0: at once), then closes its end.
asio::awaitable<void> serve(beast::test::stream& server, std::string_view bytes, std::size_t piece) {
    while (!bytes.empty()) {
        const std::size_t n = piece == 0 ? bytes.size() : std::min(piece, bytes.size());
        asio::write(server, asio::buffer(bytes.data(), n)); // a test stream write never blocks
        bytes.remove_prefix(n);
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
    server.close(); // the client reads what is left, then EOF
}

// Chunked framing that every reader of the response agrees on: the Transfer-Encoding fields,
// combined into one list (RFC 9112 section 6.1), are codings (tokens) and the last one is
// "chunked". Written independently of the library's is_chunked_coding_list(), as a reference.
bool chunked_framing(const th::response& res) {
    std::string list;
    const auto [first, last_field] = res.equal_range(th::field::transfer_encoding);
    for (auto it = first; it != last_field; ++it) {
        list += ',';
        list += it->value();
    }
    std::string last;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        auto next = list.find(',', pos);
        if (next == std::string::npos) next = list.size();
        std::string_view e(list.data() + pos, next - pos);
        while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
        while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
        if (!e.empty()) {
            for (unsigned char c : e)
                if (!(std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                             std::string_view::npos))
                    return false;
            if (beast::iequals(last, "chunked")) return false; // chunked must be the last coding
            last = e;
        }
        pos = next + 1;
    }
    return beast::iequals(last, "chunked");
}

// The response is delimited without closing the connection (else it cannot be reused).
bool self_delimited(const th::request& req, const th::response& res) {
    const unsigned s = res.result_int();
    return req.method() == th::verb::head || (s >= 100 && s < 200) || s == 204 || s == 304 ||
           chunked_framing(res) || res.has_content_length();
}

void check(const exchange_result& r, const th::request& req, bool first, std::size_t input_size) {
    if (first) FUZZ_CHECK(r.got_bytes == (input_size > 0));
    if (r.ec) {
        FUZZ_CHECK(!r.reusable);
        // Stream, parser and limit errors only: the stream cannot fail otherwise, and no timers run.
        const bool ours = r.ec.category() == tokenflight::error_category();
        const bool parser = r.ec.category() == beast::http::make_error_code(beast::http::error::need_more).category();
        FUZZ_CHECK(ours || parser);
        FUZZ_CHECK(r.ec != beast::http::error::need_more && r.ec != beast::http::error::need_buffer);
        if (ours)
            FUZZ_CHECK(r.ec == tokenflight::errc::connection_closed || r.ec == tokenflight::errc::header_too_large ||
                       r.ec == tokenflight::errc::body_too_large);
        return;
    }
    FUZZ_CHECK(r.got_bytes);
    // RFC 9110 section 15.2: a client reads past interim 1xx responses to the final response.
    // Handing one back as the response would leave the real one in the buffer, where the next
    // request on the connection would read it. A 101 (never asked for) ends the connection.
    const unsigned status = r.res.result_int();
    FUZZ_CHECK(status / 100 != 1 || (status == 101 && !r.reusable));
    FUZZ_CHECK(r.res.body().size() <= limits.body_limit);
    if (req.method() == th::verb::head) FUZZ_CHECK(r.res.body().empty());
    if (r.reusable) {
        FUZZ_CHECK(req.keep_alive() && r.res.keep_alive());
        FUZZ_CHECK(self_delimited(req, r.res));
    }
}

// What one exchange ended with, in the terms both readers share.
struct seen {
    tokenflight::error_code ec;
    unsigned status = 0;
    std::size_t body_size = 0;
    bool reusable = false;
    bool operator==(const seen&) const = default;
};

asio::awaitable<void> client(beast::test::stream& stream, const th::request& req, std::size_t input_size,
                             std::vector<seen>& out) {
    beast::flat_buffer buffer;
    for (int i = 0; i < max_exchanges; ++i) {
        const exchange_result r = co_await th::detail::exchange_on(stream, buffer, req, limits);
        check(r, req, i == 0, input_size);
        out.push_back({r.ec, r.ec ? 0 : r.res.result_int(), r.ec ? 0 : r.res.body().size(), r.reusable});
        if (r.ec || !r.reusable) break;
    }
}

// The same exchanges read into brief responses: they must end exactly as the full reads did
// (same error, status, body size and reuse), since the load path relies on the brief reader.
asio::awaitable<void> brief_client(beast::test::stream& stream, const th::request& req, std::vector<seen>& out) {
    beast::flat_buffer buffer;
    std::string head;
    FUZZ_CHECK(!th::serialize_request_head(req, head));
    const auto w = th::detail::wire_of(head, req);
    for (int i = 0; i < max_exchanges; ++i) {
        auto op = th::detail::exchange_on<th::detail::brief_reader>(stream, buffer, w, limits);
        const auto r = co_await std::move(op);
        out.push_back({r.ec, r.ec ? 0 : r.res.status, r.ec ? 0 : static_cast<std::size_t>(r.res.body_size), r.reusable});
        if (r.ec || !r.reusable) break;
    }
}

void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const bool head = data[0] & 0x80;
    const bool close = data[0] & 0x40;
    const std::size_t read_max = data[0] & 0x3F;
    const std::size_t piece = data[1];
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

    th::request req{head ? th::verb::head : th::verb::post, "/oauth2/token", 11};
    req.set(th::field::host, "auth.example");
    if (!head) {
        req.set(th::field::content_type, "application/x-www-form-urlencoded");
        req.body() = "grant_type=client_credentials";
    }
    req.keep_alive(!close);
    req.prepare_payload();

    std::vector<seen> full, brief;
    for (const bool is_brief : {false, true}) {
        asio::io_context ioc;
        beast::test::stream client_end(ioc), server_end(ioc);
        client_end.connect(server_end);
        if (read_max != 0) client_end.read_size(read_max);
        asio::co_spawn(ioc, serve(server_end, bytes, piece), rethrow);
        if (is_brief)
            asio::co_spawn(ioc, brief_client(client_end, req, brief), rethrow);
        else
            asio::co_spawn(ioc, client(client_end, req, bytes.size(), full), rethrow);
        ioc.run();
        // Everything the server sent was read or is still buffered by the client; nothing more.
        FUZZ_CHECK(client_end.nread_bytes() <= bytes.size());
    }
    FUZZ_CHECK(full == brief);
    return 0;
}
