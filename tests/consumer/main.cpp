// Builds against the installed tokenflight package and fetches one token from the fake server.
#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/io_context.hpp>
#ifndef CONSUMER_SEPARATE
// Names that BOOST_ASIO_NO_DEPRECATED removes: a user's older Asio code must keep compiling.
#include <boost/asio/io_service.hpp>
#endif

#include <iostream>

int main() {
    tokenflight::testing::fake_auth_server server;
#ifdef CONSUMER_SEPARATE
    boost::asio::io_context ioc;
#else
    boost::asio::io_service ioc;
#endif
    tokenflight::token_source source(ioc.get_executor(), server.client_credentials());
    int status = 1;
    source.async_get_token([&](tokenflight::error_code ec, tokenflight::access_token t) {
        if (!ec && t.generation() == 1) status = 0;
        std::cout << (ec ? ec.message() : "consumer got " + t.redacted()) << '\n';
        source.close();
    });
#ifdef CONSUMER_SEPARATE
    ioc.run();
#else
    boost::system::error_code ec;
    ioc.run(ec); // deprecated overload
    if (ec) status = 1;
#endif
    return status;
}
