// tokenflight-load's threads: -t N event loops, as wrk's threads, each an io_context run by
// exactly one thread.
#ifndef TOKENFLIGHT_LOAD_EVENT_LOOPS_HPP
#define TOKENFLIGHT_LOAD_EVENT_LOOPS_HPP

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace tokenflight::load {

/// `count` io_contexts, each run by a thread of its own from construction on, kept running while
/// they have nothing to do.
///
/// The destructor lets go of the work, stops every loop and joins its thread: whatever still runs
/// on a loop (a late completion of a given-up wait) is abandoned there. Objects that post work to
/// a loop are destroyed before the loops stop only if they are declared after this object.
class event_loops {
public:
    using executor_type = boost::asio::io_context::executor_type;

    explicit event_loops(int count);
    ~event_loops();
    event_loops(const event_loops&) = delete;
    event_loops& operator=(const event_loops&) = delete;

    int size() const noexcept { return static_cast<int>(contexts_.size()); }
    /// Loop `k`'s executor: the io_context's own type, which fits in a type-erased executor
    /// without a heap allocation.
    executor_type executor(int k) const noexcept {
        return contexts_[static_cast<std::size_t>(k)]->get_executor();
    }

private:
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    std::vector<boost::asio::executor_work_guard<executor_type>> work_;
    std::vector<std::thread> threads_;
};

} // namespace tokenflight::load

#endif
