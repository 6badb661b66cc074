// Loopback ports for tests that start servers of their own (tinyproxy, redis-server).
#ifndef TOKENFLIGHT_TESTS_PORTS_HPP
#define TOKENFLIGHT_TESTS_PORTS_HPP

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>

namespace test {

/// A 127.0.0.1 port the kernel just handed out and took back: free now, and unlikely to be
/// handed out again in the instant before the server binds it. Nothing listens on it meanwhile.
inline std::uint16_t free_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
inline bool accepts(std::uint16_t port) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    return !ec;
}

} // namespace test

#endif
