// Shared by the integration and stress tests: io_context threads and bounded waits.
#ifndef TOKENFLIGHT_TESTS_SUPPORT_HPP
#define TOKENFLIGHT_TESTS_SUPPORT_HPP

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace test {

namespace asio = boost::asio;

class io_threads;

namespace detail {
// Every live io_threads, so that a helper that fails a test can stop the threads running the
// executor it was given.
inline std::mutex registry_mutex;
inline std::vector<io_threads*> registry;
} // namespace detail

/// An io_context run by `n` threads until destruction.
class io_threads {
public:
    explicit io_threads(int n = 1) : ioc_(n), guard_(asio::make_work_guard(ioc_)) {
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
        std::lock_guard l(detail::registry_mutex);
        detail::registry.push_back(this);
    }
    ~io_threads() {
        stop();
        std::lock_guard l(detail::registry_mutex);
        std::erase(detail::registry, this);
    }
    io_threads(const io_threads&) = delete;
    io_threads& operator=(const io_threads&) = delete;
    /// Stops the io_context and joins its threads; no handler runs after this returns.
    void stop() {
        std::lock_guard l(stop_mutex_);
        guard_.reset();
        ioc_.stop();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    asio::io_context& context() noexcept { return ioc_; }
    asio::any_io_executor executor() { return ioc_.get_executor(); }

private:
    std::mutex stop_mutex_;
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

/// Stops the io_threads that run `ex`, if any: a helper calls it before failing a test, so that
/// no handler runs (and touches the test's locals) while the failure unwinds the test's frame.
inline void stop_threads_running(const asio::any_io_executor& ex) {
    auto& ctx = asio::query(ex, asio::execution::context);
    io_threads* owner = nullptr;
    {
        std::lock_guard l(detail::registry_mutex);
        for (auto* t : detail::registry)
            if (&t->context() == &ctx) owner = t;
    }
    if (owner) owner->stop();
}

/// Runs a coroutine to completion on `ex` and returns its result; fails the test (instead of
/// hanging) when it takes longer than `limit`, after stopping the threads that run `ex`.
template <class Awaitable>
auto run(const asio::any_io_executor& ex, Awaitable aw, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto fut = asio::co_spawn(ex, std::move(aw), asio::use_future);
    if (fut.wait_for(limit) != std::future_status::ready) {
        stop_threads_running(ex);
        FAIL("operation did not complete in time");
    }
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
