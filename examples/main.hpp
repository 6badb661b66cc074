// The one main every example shares: runs co_main on an io_context and reports its errors.
#ifndef TOKENFLIGHT_EXAMPLES_MAIN_HPP
#define TOKENFLIGHT_EXAMPLES_MAIN_HPP

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <iostream>

/// Each example defines this. Its return value is the process exit status.
boost::asio::awaitable<int> co_main(int argc, char** argv);

int main(int argc, char** argv) {
    boost::asio::io_context ioc;
    int status = 1;
    boost::asio::co_spawn(ioc, co_main(argc, argv), [&](std::exception_ptr ep, int rc) {
        if (ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const boost::system::system_error& e) {
                std::cerr << "error: " << e.code().message() << '\n';
            } catch (const std::exception& e) {
                std::cerr << "error: " << e.what() << '\n';
            }
            return;
        }
        status = rc;
    });
    ioc.run();
    return status;
}

#endif
