// The provider guide's first snippet, "get access token", done right: credentials from the
// environment (never from the source code), a typed error with the server's description when the
// request fails, the secret never printed, and the token cached for every later caller.
//
//   TOKENFLIGHT_TOKEN_URL=https://auth.example/oauth2/token TOKENFLIGHT_CLIENT_ID=... TOKENFLIGHT_CLIENT_SECRET=... get_token
//   get_token --demo      (runs against tokenflight's in-process fake authorization server)
#include "main.hpp"

#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <memory>
#include <string_view>

namespace asio = boost::asio;
namespace tf = tokenflight;

asio::awaitable<int> co_main(int argc, char** argv) {
    std::unique_ptr<tf::testing::fake_auth_server> demo_server;
    tf::credentials creds;
    if (argc > 1 && std::string_view(argv[1]) == "--demo") {
        demo_server = std::make_unique<tf::testing::fake_auth_server>();
        creds = demo_server->client_credentials();
        std::cout << "demo: fake authorization server at " << creds.token_url << '\n';
    } else {
        auto from_env = tf::credentials::from_env();
        if (!from_env) {
            std::cerr << "set TOKENFLIGHT_TOKEN_URL, TOKENFLIGHT_CLIENT_ID and TOKENFLIGHT_CLIENT_SECRET"
                         " (or TOKENFLIGHT_CLIENT_SECRET_FILE), or pass --demo\n";
            co_return 2;
        }
        creds = std::move(*from_env);
    }
    std::cout << "using " << creds << '\n'; // the secret prints as ***

    // The co_await stays in a statement of its own: GCC 12 miscompiles a co_await inside the
    // argument list of a constructor call (the temporaries are destroyed twice).
    auto ex = co_await asio::this_coro::executor;
    tf::token_source source(ex, std::move(creds));
    tf::diagnostics diag;
    auto [ec, token] = co_await source.async_get_token(diag, asio::as_tuple(asio::use_awaitable));
    if (ec) {
        std::cerr << "no token: " << ec.message() << " (" << diag.to_string() << ")\n";
        co_return 1;
    }
    std::cout << "got " << token << ", type " << token.type() << ", valid for "
              << std::chrono::duration_cast<std::chrono::seconds>(token.expires_at() - tf::clock::now()).count()
              << " s\n";

    // Every later caller is served from the cache: no second token request.
    auto [ec2, again] = co_await source.async_get_token(asio::as_tuple(asio::use_awaitable));
    const bool same = !ec2 && again.value() == token.value();
    std::cout << "second call: same token: " << std::boolalpha << same
              << ", token requests sent: " << source.stats().token_requests << '\n';
    if (!same || source.stats().token_requests != 1) {
        std::cerr << "the second call should have been served from the cache\n";
        co_return 1;
    }
    // The demo server also knows the token it issued: it must be that one, valid, and asked once.
    if (demo_server && (demo_server->token_requests() != 1 || token.value().empty() ||
                        demo_server->check(token.value()) != tf::testing::fake_auth_server::verdict::valid)) {
        std::cerr << "demo: the token is not the one the server issued, or it was asked for more than once\n";
        co_return 1;
    }
    co_return 0;
}
