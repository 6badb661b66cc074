#include "event_loops.hpp"

namespace tokenflight::load {

event_loops::event_loops(int count) {
    for (int k = 0; k < count; ++k) {
        // Concurrency hint 1: one thread runs each loop, so what a loop posts to itself stays in
        // that thread's private queue.
        contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
        work_.push_back(boost::asio::make_work_guard(*contexts_.back()));
    }
    for (auto& ioc : contexts_)
        threads_.emplace_back([ctx = ioc.get()] { ctx->run(); });
}

event_loops::~event_loops() {
    for (auto& w : work_)
        w.reset();
    for (auto& ioc : contexts_)
        ioc->stop();
    for (auto& t : threads_)
        t.join();
}

} // namespace tokenflight::load
