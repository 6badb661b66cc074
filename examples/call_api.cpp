// The provider guide's second snippet, "get data from endpoint", done right: the API key,
// Referer and Origin on every request, the raw token in Authorization as the guide sends it, and
// on a 401 one newer token for all requests that saw it, then one resend; never a loop.
//
//   TOKENFLIGHT_* as for get_token, plus API_URL and API_KEY:  call_api
//   call_api --demo    (in-process fake authorization server and API; revokes the token midway)
#include "main.hpp"

#include <tokenflight/client.hpp>
#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

namespace asio = boost::asio;
namespace tf = tokenflight;

asio::awaitable<int> co_main(int argc, char** argv) {
    std::unique_ptr<tf::testing::fake_auth_server> auth;
    std::unique_ptr<tf::testing::fake_api_server> api;
    tf::credentials creds;
    std::string api_url, api_key;
    const bool demo = argc > 1 && std::string_view(argv[1]) == "--demo";
    if (demo) {
        auth = std::make_unique<tf::testing::fake_auth_server>();
        tf::testing::fake_api_server::options ao;
        ao.api_key = "MY_API_KEY";
        api = std::make_unique<tf::testing::fake_api_server>(*auth, ao);
        creds = auth->client_credentials();
        api_url = api->url("/my-api-endpoint");
        api_key = "MY_API_KEY";
    } else {
        auto from_env = tf::credentials::from_env();
        const char* url = std::getenv("API_URL");
        const char* key = std::getenv("API_KEY");
        if (!from_env || !url) {
            std::cerr << "set TOKENFLIGHT_TOKEN_URL, TOKENFLIGHT_CLIENT_ID, TOKENFLIGHT_CLIENT_SECRET and API_URL"
                         " (API_KEY optional), or pass --demo\n";
            co_return 2;
        }
        creds = std::move(*from_env);
        api_url = url;
        api_key = key ? key : "";
    }

    auto ex = co_await asio::this_coro::executor;
    tf::token_source source(ex, std::move(creds));
    tf::client_options options;
    options.default_headers = {{"x-api-key", api_key}, {"Referer", "MY_REFERER"}, {"Origin", "MY_ORIGIN"}};
    options.auth_scheme = ""; // the provider guide sends the raw token, without "Bearer"
    tf::client client(ex, source, options);

    for (int i = 1; i <= 3; ++i) {
        if (demo && i == 2) {
            api->revoke_all();
            std::cout << "demo: the API revoked every token\n";
        }
        auto [ec, res] = co_await client.async_get(api_url, asio::as_tuple(asio::use_awaitable));
        if (ec) {
            std::cerr << "request " << i << " failed: " << ec.message() << '\n';
            co_return 1;
        }
        std::cout << "request " << i << ": HTTP " << res.result_int() << ' ' << res.body() << '\n';
        if (res.result_int() / 100 != 2) {
            std::cerr << "request " << i << " was refused: HTTP " << res.result_int() << '\n';
            co_return 1;
        }
    }
    const auto stats = client.stats();
    const auto token_requests = source.stats().token_requests;
    std::cout << "requests " << stats.requests << ", resent after 401: " << stats.resends_after_401
              << ", token requests: " << token_requests << '\n';
    // The demo knows what must have happened: one token, one revocation, one refresh, one resend.
    if (demo && (token_requests != 2 || auth->token_requests() != 2 || stats.resends_after_401 != 1 ||
                 api->count_status(401) != 1 || api->count_status(200) != 3)) {
        std::cerr << "demo: unexpected counts (expected 2 token requests, 1 resend, one 401, three 200s)\n";
        co_return 1;
    }
    co_return 0;
}
