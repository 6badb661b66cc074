// Shared by the integration and stress tests: io_context threads and bounded waits.
#ifndef TOKENFLIGHT_TESTS_SUPPORT_HPP
#define TOKENFLIGHT_TESTS_SUPPORT_HPP

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

namespace test {

namespace asio = boost::asio;

/// An io_context run by `n` threads until destruction.
class io_threads {
public:
    explicit io_threads(int n = 1) : ioc_(n), guard_(asio::make_work_guard(ioc_)) {
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
    }
    ~io_threads() { stop(); }
    void stop() {
        guard_.reset();
        ioc_.stop();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    asio::io_context& context() noexcept { return ioc_; }
    asio::any_io_executor executor() { return ioc_.get_executor(); }

private:
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

/// Runs a coroutine to completion on `ex` and returns its result; fails the test (instead of
/// hanging) when it takes longer than `limit`.
template <class Awaitable>
auto run(const asio::any_io_executor& ex, Awaitable aw, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto fut = asio::co_spawn(ex, std::move(aw), asio::use_future);
    const auto status = fut.wait_for(limit);
    REQUIRE_MESSAGE(status == std::future_status::ready, "operation did not complete in time");
    return fut.get();
}

/// Polls `pred` until true or `limit` passes; returns the last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

} // namespace test

#endif
