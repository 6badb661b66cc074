// Fuzzes the whole client end to end: token source (single flight, retries, validation), the 401
// path, the connection pool and the HTTP/1.1 exchange, with fuzzed token-endpoint and API
// responses over in-memory streams (no socket, one thread: the same input always takes the same
// path).
//
// Input: one control byte, then the responses, separated by "~~~". Requests are answered in the
// order they arrive (token requests and API requests alike), one response per connection, after
// which the server closes its end; when the responses run out the server just closes.
//   byte 0: bits 0-1 = API requests sent concurrently minus one (1..4); bit 2 = they are POSTs
//           with a body (else GETs); bit 3 = client_secret_post (else Basic)
//
// Invariants:
// - every request the client writes parses (Beast's request parser) as exactly one request,
//   with nothing after it, and with exactly the header fields that were set: no injected line,
//   no smuggled request, an Authorization value of visible ASCII only;
// - every response handed to the caller is final (no 1xx) and within the body limit;
// - every operation completes, and the pools hold no connection afterwards.
#include "fuzz_check.hpp"
#include "access.hpp"
#include "http/pool_impl.hpp"
#include "token_source_impl.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace tf = tokenflight;
namespace th = tokenflight::http;

constexpr std::string_view separator = "~~~";
constexpr std::size_t body_limit = 4096;
constexpr std::size_t header_limit = 2048;

struct script {
    std::vector<std::string_view> responses;
    std::size_t next = 0;
    int requests_seen = 0;
};

bool visible_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7E) return false;
    return !s.empty();
}

// The header fields the client sets, by request kind; each exactly once.
void check_fields(const th::request& req, bool post_auth) {
    const bool token_request = req.target() == "/token";
    std::multiset<std::string> names;
    for (const auto& f : req) names.insert(std::string(f.name_string()));
    std::multiset<std::string> expected;
    if (token_request) {
        expected = {"Host", "Content-Type", "Accept", "User-Agent", "Content-Length"};
        if (!post_auth) expected.insert("Authorization");
    } else {
        expected = {"Host", "x-api-key", "Authorization", "User-Agent"};
        if (req.method() == th::verb::post) expected.insert("Content-Length");
    }
    FUZZ_CHECK(names == expected);
    FUZZ_CHECK(req[th::field::host] == (token_request ? "127.0.0.1:1" : "127.0.0.1:2"));
    FUZZ_CHECK(req[th::field::user_agent] == "tokenflight/0.1");
    if (token_request) {
        FUZZ_CHECK(req[th::field::content_type] == "application/x-www-form-urlencoded");
        FUZZ_CHECK(req[th::field::accept] == "application/json");
        FUZZ_CHECK(req.body().starts_with("grant_type=client_credentials&client_id=fuzz-client"));
        if (!post_auth) FUZZ_CHECK(req[th::field::authorization].substr(0, 6) == "Basic ");
    }
    if (!token_request) {
        FUZZ_CHECK(req["x-api-key"] == "fuzz-key");
        const auto auth = req[th::field::authorization];
        FUZZ_CHECK(auth.substr(0, 7) == "Bearer ");
        FUZZ_CHECK(visible_ascii(auth.substr(7)));
        if (req.method() == th::verb::post) FUZZ_CHECK(req.body() == "payload");
    }
}

// One connection's server: reads one request, checks it, answers the next scripted response, closes.
asio::awaitable<void> serve(std::shared_ptr<beast::test::stream> server, script& s, bool post_auth) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.eager(true);
    while (!parser.is_done()) {
        auto [ec, n] = co_await server->async_read_some(buffer.prepare(4096), asio::as_tuple(asio::use_awaitable));
        if (ec) co_return; // the client closed the connection without a request
        buffer.commit(n);
        while (buffer.size() > 0 && !parser.is_done()) {
            boost::system::error_code pec;
            const auto used = parser.put(buffer.data(), pec);
            buffer.consume(used);
            if (pec == bhttp::error::need_more) break;
            FUZZ_CHECK(!pec); // the bytes written are a well-formed request
        }
    }
    // The client writes a request in one gather write: anything after it would be a second,
    // smuggled request.
    FUZZ_CHECK(buffer.size() == 0);
    check_fields(parser.get(), post_auth);
    ++s.requests_seen;
    if (s.next < s.responses.size()) {
        const auto r = s.responses[s.next++];
        asio::write(*server, asio::buffer(r.data(), r.size())); // a test stream write never blocks
    }
    server->close();
}

tf::http::detail::test_transport transport(asio::io_context& ioc, script& s, bool post_auth) {
    return [&ioc, &s, post_auth](const th::origin&) {
        auto client_end = std::make_unique<beast::test::stream>(ioc);
        auto server_end = std::make_shared<beast::test::stream>(ioc);
        client_end->connect(*server_end);
        asio::co_spawn(ioc, serve(server_end, s, post_auth), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        return client_end;
    };
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const int concurrent = 1 + (data[0] & 3);
    const bool post = data[0] & 4;
    const bool post_auth = data[0] & 8;
    script s;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    for (;;) {
        const auto cut = rest.find(separator);
        s.responses.push_back(rest.substr(0, cut));
        if (cut == std::string_view::npos) break;
        rest.remove_prefix(cut + separator.size());
    }

    asio::io_context ioc;
    tf::credentials creds;
    creds.token_url = "http://127.0.0.1:1/token";
    creds.client_id = "fuzz-client";
    creds.client_secret = tf::secret("FUZZ-SECRET-123");
    creds.auth = post_auth ? tf::client_auth::post : tf::client_auth::basic;
    tf::token_source_options so;
    // No real waiting anywhere: a retry's timer is already due, so nothing in a run depends on how
    // fast the machine is (CI fuzzes with a fixed run count and must reach the same inputs).
    so.backoff.initial = tf::clock::duration::zero();
    so.backoff.max = tf::clock::duration::zero();
    so.backoff.max_attempts = 3;
    so.backoff.deadline = std::chrono::milliseconds(500); // a Retry-After beyond it ends the refresh
    // Long enough that within one input a failed refresh always means "fail fast" for the rest: a
    // cool-down that could end mid-input would make the path depend on the machine's speed.
    so.backoff.cooldown = std::chrono::seconds(10);
    so.body_limit = body_limit;
    tf::token_source source(ioc.get_executor(), creds, so);
    th::pool_options po;
    po.body_limit = body_limit;
    po.header_limit = header_limit;
    th::connection_pool pool(ioc.get_executor(), po);
    tokenflight::detail::access::impl(tokenflight::detail::access::impl(source)->pool())->set_test_transport(transport(ioc, s, post_auth));
    tokenflight::detail::access::impl(pool)->set_test_transport(transport(ioc, s, post_auth));
    tf::client_options co;
    co.default_headers = {{"x-api-key", "fuzz-key"}};
    tf::client client(source, pool, co);

    int done = 0;
    for (int i = 0; i < concurrent; ++i) {
        auto on_done = [&](tf::error_code ec, th::response res) {
            if (!ec) {
                const unsigned status = res.result_int();
                FUZZ_CHECK(status / 100 != 1 || status == 101);
                FUZZ_CHECK(res.body().size() <= body_limit);
            }
            if (++done == concurrent) {
                // Everything answered: close, so that idle sweepers and timers end and run() returns.
                source.close();
                pool.close();
            }
        };
        if (post)
            client.async_post("http://127.0.0.1:2/api", "payload", on_done);
        else
            client.async_get("http://127.0.0.1:2/api", on_done);
    }
    ioc.run();
    FUZZ_CHECK(done == concurrent);
    FUZZ_CHECK(pool.stats().open_connections == 0);
    FUZZ_CHECK(tokenflight::detail::access::impl(source)->pool().stats().open_connections == 0);
    // No retry loop: per API request at most three sends and two refreshes (its first token and
    // one after a 401), plus one background refresh; each refresh at most max_attempts requests.
    FUZZ_CHECK(s.requests_seen <= concurrent * 3 + (2 * concurrent + 1) * so.backoff.max_attempts);
    return 0;
}
