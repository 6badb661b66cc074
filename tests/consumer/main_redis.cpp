// Builds against the installed tokenflight::redis. No Redis listens on the URL's port: the
// source falls back to its own token request and counts the store's failure.
#include <tokenflight/redis_token_store.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
    tokenflight::testing::fake_auth_server server;
    boost::asio::io_context ioc;
    const auto creds = server.client_credentials();
    tokenflight::redis_store_options store;
    store.url = "redis://127.0.0.1:1"; // nothing listens on port 1
    // the record key comes from the client secret (16 bytes at least) unless key_material is set
    tokenflight::token_source_options options;
    options.shared_store = tokenflight::make_redis_token_store(ioc.get_executor(), creds, store);
    tokenflight::token_source source(ioc.get_executor(), creds, options);
    int status = 1;
    source.async_get_token([&](tokenflight::error_code ec, tokenflight::access_token t) {
        const auto s = source.stats();
        if (!ec && s.token_requests == 1 && s.shared_store_errors == 1) status = 0;
        std::cout << (ec ? ec.message() : "consumer_redis got " + t.redacted()) << ", store errors "
                  << s.shared_store_errors << '\n';
        source.close();
    });
    ioc.run();
    return status;
}
