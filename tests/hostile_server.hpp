// A raw TCP server for hostile-peer tests: it reads a request head, then sends a fixed prefix and
// a pattern repeated for as long as the client keeps the connection open (bounded by a byte cap,
// so that no test loop is endless). Bytes, not HTTP: it can send what no real server would.
#ifndef TOKENFLIGHT_TESTS_HOSTILE_SERVER_HPP
#define TOKENFLIGHT_TESTS_HOSTILE_SERVER_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace test {

class hostile_server {
public:
    struct script {
        std::string prefix;                 ///< sent once after the request head
        std::string repeat;                 ///< then sent again and again
        std::chrono::milliseconds pause{0}; ///< between repeats (a slow drip)
        std::uint64_t max_bytes = std::uint64_t(4) << 30; ///< stop (and close) after this many
    };

    /// The loopback address it listens on.
    enum class loopback { ipv4, ipv6 };

    explicit hostile_server(script s, loopback address = loopback::ipv4)
        : script_(std::move(s)),
          acceptor_(ioc_, {boost::asio::ip::make_address(address == loopback::ipv6 ? "::1" : "127.0.0.1"), 0}) {
        boost::asio::co_spawn(ioc_, accept(), boost::asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~hostile_server() {
        ioc_.stop();
        thread_.join();
    }
    hostile_server(const hostile_server&) = delete;
    hostile_server& operator=(const hostile_server&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string url(const std::string& path = "/") const {
        const bool v6 = acceptor_.local_endpoint().address().is_v6();
        return std::string("http://") + (v6 ? "[::1]" : "127.0.0.1") + ":" + std::to_string(port()) + path;
    }
    /// Request heads received so far, as bytes.
    std::vector<std::string> requests() const {
        std::lock_guard l(mutex_);
        return requests_;
    }
    std::uint64_t bytes_sent() const { return sent_.load(); }

private:
    boost::asio::awaitable<void> accept() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return;
            boost::asio::co_spawn(ioc_, serve(std::move(socket)), boost::asio::detached);
        }
    }

    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket) {
        namespace asio = boost::asio;
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        asio::streambuf in(64 * 1024);
        auto [read_ec, head_size] = co_await asio::async_read_until(socket, in, "\r\n\r\n", tuple);
        if (read_ec) co_return;
        {
            std::lock_guard l(mutex_);
            requests_.emplace_back(static_cast<const char*>(in.data().data()), head_size);
        }
        auto [prefix_ec, prefix_bytes] = co_await asio::async_write(socket, asio::buffer(script_.prefix), tuple);
        sent_ += prefix_bytes;
        if (prefix_ec || script_.repeat.empty()) co_return;
        // Writes in blocks of at least 64 KiB so that a fast client is fed at loopback speed.
        std::string block;
        while (block.size() < 64 * 1024) block += script_.repeat;
        if (script_.pause.count() > 0) block = script_.repeat;
        asio::steady_timer timer(ioc_);
        for (std::uint64_t total = prefix_bytes; total < script_.max_bytes;) {
            auto [block_ec, block_bytes] = co_await asio::async_write(socket, asio::buffer(block), tuple);
            sent_ += block_bytes;
            total += block_bytes;
            if (block_ec) co_return; // the client gave up: what the tests want to see
            if (script_.pause.count() > 0) {
                timer.expires_after(script_.pause);
                co_await timer.async_wait(tuple);
            }
        }
    }

    script script_;
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;
    std::atomic<std::uint64_t> sent_{0};
};

} // namespace test

#endif
