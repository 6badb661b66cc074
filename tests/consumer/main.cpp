// Builds against the installed tokenflight package and fetches one token from the fake server.
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
    tokenflight::testing::fake_auth_server server;
    boost::asio::io_context ioc;
    tokenflight::token_source source(ioc.get_executor(), server.client_credentials());
    int status = 1;
    source.async_get_token([&](tokenflight::error_code ec, tokenflight::access_token t) {
        if (!ec && t.generation() == 1) status = 0;
        std::cout << (ec ? ec.message() : "consumer got " + t.redacted()) << '\n';
        source.close();
    });
    ioc.run();
    return status;
}
