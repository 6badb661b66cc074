// Embedding tokenflight in a high-throughput server: an async Beast HTTP gateway that forwards
// every incoming request to an OAuth-protected upstream through ONE shared tokenflight client.
// Thousands of concurrent downstream requests share one cached token; a revoked token is
// refreshed once for all of them.
//
//   TOKENFLIGHT_TOKEN_URL=... TOKENFLIGHT_CLIENT_ID=... TOKENFLIGHT_CLIENT_SECRET=... gateway UPSTREAM [PORT]
//                                                 serve on 127.0.0.1:PORT (default 8080)
//   gateway --demo     fake authorization server and API, the gateway on a free port, and 2,000
//                      requests sent through it; exits 0 when all got 200 from one token fetch
#include "main.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace tf = tokenflight;
using tcp = asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

// One downstream connection: read a request, forward it upstream with the shared client, answer.
asio::awaitable<void> serve(tcp::socket socket, tf::client& upstream, tf::http::origin upstream_origin) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        tf::http::request in;
        stream.expires_after(std::chrono::seconds(30)); // idle downstream connections go away
        auto [read_ec, bytes_read] = co_await beast::http::async_read(stream, buffer, in, tuple_awaitable);
        if (read_ec) co_return;
        stream.expires_never();

        tf::http::request out{in.method(), in.target(), 11};
        for (auto name : {tf::http::field::content_type, tf::http::field::accept})
            if (auto v = in[name]; !v.empty()) out.set(name, v);
        out.body() = std::move(in.body());

        // Built in a statement of its own: GCC 12 destroys a braced temporary inside a co_await
        // expression twice.
        tf::http::location to{upstream_origin, std::string(in.target())};
        auto [ec, res] = co_await upstream.async_send(std::move(to), std::move(out), tuple_awaitable);
        tf::http::response reply{tf::http::status::ok, in.version()};
        if (ec) {
            reply.result(tf::http::status::bad_gateway);
            reply.set(tf::http::field::content_type, "application/json");
            reply.body() = R"({"error":"upstream","detail":")" + ec.message() + "\"}";
        } else {
            reply.result(res.result());
            if (auto ct = res[tf::http::field::content_type]; !ct.empty()) reply.set(tf::http::field::content_type, ct);
            reply.body() = std::move(res.body());
        }
        reply.keep_alive(in.keep_alive());
        reply.prepare_payload();
        auto [write_ec, bytes_written] = co_await beast::http::async_write(stream, reply, tuple_awaitable);
        if (write_ec || !reply.keep_alive()) co_return;
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, tf::client& upstream, tf::http::origin upstream_origin) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(acceptor.get_executor()), tuple_awaitable);
        if (ec) co_return; // closed
        auto ex = socket.get_executor();
        asio::co_spawn(ex, serve(std::move(socket), upstream, upstream_origin), asio::detached);
    }
}

// One of the demo's downstream clients: `count` requests one after the other, counting the 200s.
asio::awaitable<void> send_requests(tf::http::connection_pool& downstream, tf::http::origin gateway, int count,
                                    std::atomic<int>& ok) {
    for (int i = 0; i < count; ++i) {
        tf::http::request req{tf::http::verb::get, "/orders", 11};
        auto [ec, res] = co_await downstream.async_send(gateway, std::move(req), tuple_awaitable);
        if (!ec && res.result() == tf::http::status::ok) ++ok;
    }
}

// --demo: drive 2,000 requests at 50 in flight through the gateway, with a plain pool (no token).
asio::awaitable<int> drive(std::uint16_t port, tf::testing::fake_auth_server& auth, tf::testing::fake_api_server& api) {
    constexpr int clients = 50, requests_each = 40, requests = clients * requests_each;
    auto ex = co_await asio::this_coro::executor;
    tf::http::pool_options po;
    po.max_connections_per_origin = clients;
    tf::http::connection_pool downstream(ex, po);
    const tf::http::origin gateway{.tls = false, .host = "127.0.0.1", .port = port};
    std::atomic<int> ok{0};

    // The clients run side by side, and one wait ends when the last is done: a parallel group
    // of deferred co_spawns, nothing polled.
    auto client = [&] {
        return asio::co_spawn(ex, send_requests(downstream, gateway, requests_each, ok), asio::deferred);
    };
    std::vector<decltype(client())> group;
    for (int c = 0; c < clients; ++c) group.push_back(client());
    auto all_done = asio::experimental::make_parallel_group(std::move(group))
                        .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    auto [completion_order, failures] = co_await std::move(all_done);
    for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);

    std::cout << "gateway forwarded " << ok << " of " << requests << " requests with 200; upstream saw "
              << api.requests() << " requests; the authorization server issued " << auth.tokens_issued()
              << " token(s)\n";
    co_return ok == requests && auth.token_requests() == 1 ? 0 : 1;
}

} // namespace

asio::awaitable<int> co_main(int argc, char** argv) {
    auto ex = co_await asio::this_coro::executor;
    const bool demo = argc > 1 && std::string_view(argv[1]) == "--demo";
    std::unique_ptr<tf::testing::fake_auth_server> auth;
    std::unique_ptr<tf::testing::fake_api_server> api;
    tf::credentials creds;
    std::string upstream_url;
    std::uint16_t port = 8080;
    if (demo) {
        auth = std::make_unique<tf::testing::fake_auth_server>();
        api = std::make_unique<tf::testing::fake_api_server>(*auth);
        creds = auth->client_credentials();
        upstream_url = api->url("/");
        port = 0;
    } else {
        auto from_env = tf::credentials::from_env();
        if (!from_env || argc < 2) {
            std::cerr << "usage: gateway UPSTREAM_BASE_URL [PORT] with TOKENFLIGHT_* set, or gateway --demo\n";
            co_return 2;
        }
        creds = std::move(*from_env);
        upstream_url = argv[1];
        if (argc > 2) port = static_cast<std::uint16_t>(std::atoi(argv[2]));
    }
    auto upstream_loc = tf::http::parse_url(upstream_url);
    if (!upstream_loc) {
        std::cerr << "bad upstream URL: " << upstream_loc.error().message() << '\n';
        co_return 2;
    }

    tf::token_source tokens(ex, std::move(creds));
    tf::client_options options;
    options.pool.max_connections_per_origin = 128;
    tf::client upstream(ex, tokens, options);

    tcp::acceptor acceptor(ex, {asio::ip::make_address("127.0.0.1"), port});
    port = acceptor.local_endpoint().port();
    std::cout << "gateway listening on http://127.0.0.1:" << port << " -> " << upstream_url << '\n';
    asio::co_spawn(ex, accept_loop(acceptor, upstream, upstream_loc->origin), asio::detached);
    if (!demo) {
        asio::steady_timer forever(ex, asio::steady_timer::time_point::max());
        co_await forever.async_wait(tuple_awaitable);
        co_return 0;
    }
    const int rc = co_await drive(port, *auth, *api);
    acceptor.close();
    tokens.close();
    co_return rc;
}
