// Private to tokenflight: runs a request coroutine on a fresh strand and completes a type-erased
// handler with its result, carrying the handler's cancellation slot into the coroutine.
#ifndef TOKENFLIGHT_SRC_SPAWN_HPP
#define TOKENFLIGHT_SRC_SPAWN_HPP

#include <tokenflight/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <exception>
#include <vector>
#include <new>
#include <tuple>

namespace tokenflight::detail {

/// The completion handler of a spawned request: completes the type-erased user handler on
/// the user's executor and carries the user's cancellation slot into the coroutine.
template <class Result>
struct spawn_completion {
    boost::asio::any_completion_handler<void(error_code, Result)> handler;
    boost::asio::any_completion_executor ex;
    boost::asio::cancellation_slot slot;

    using executor_type = boost::asio::any_completion_executor;
    executor_type get_executor() const noexcept { return ex; }
    using cancellation_slot_type = boost::asio::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return slot; }

    void operator()(std::exception_ptr ep, std::tuple<error_code, Result> r) {
        auto& [ec, value] = r;
        if (ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const boost::system::system_error& e) {
                ec = e.code();
            } catch (const std::bad_alloc&) {
                ec = make_error_code(boost::system::errc::not_enough_memory);
            } catch (...) {
                ec = boost::asio::error::fault;
            }
        }
        std::move(handler)(ec, std::move(value));
    }
};

/// Runs a request coroutine on `strand` (see strand_set) and completes `handler` with its result,
/// on the handler's associated executor, or on `io` (the object's executor, as for any Asio I/O
/// object) when it has none. Not the strand: a strand does not fit in a type-erased executor's
/// small buffer, and co_spawn's outstanding-work tracking would allocate a copy per request.
template <class Result>
void spawn_request(const boost::asio::any_io_executor& strand, const boost::asio::any_io_executor& io,
                   boost::asio::awaitable<std::tuple<error_code, Result>> op,
                   boost::asio::any_completion_handler<void(error_code, Result)> handler) {
    namespace asio = boost::asio;
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto hex = asio::get_associated_executor(handler, io);
    asio::co_spawn(strand, std::move(op), spawn_completion<Result>{std::move(handler), std::move(hex), slot});
}

/// The strands request coroutines run on. Beast's streams need their timer and I/O completions
/// serialised, and distinct requests must still run in parallel on every thread: a fixed set of
/// strands, handed out round-robin, gives both without allocating a strand per request. Strands
/// over an io_context's own executor type are used when possible, because they fit in an
/// any_io_executor without a heap-allocated, reference-counted wrapper.
class strand_set {
public:
    explicit strand_set(const boost::asio::any_io_executor& ex, std::size_t count = 64) {
        namespace asio = boost::asio;
        strands_.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            if (const auto* io = ex.target<asio::io_context::executor_type>())
                strands_.emplace_back(asio::make_strand(*io));
            else
                strands_.emplace_back(asio::make_strand(ex));
        }
    }
    const boost::asio::any_io_executor& next() noexcept {
        return strands_[next_.fetch_add(1, std::memory_order_relaxed) % strands_.size()];
    }

private:
    std::vector<boost::asio::any_io_executor> strands_;
    std::atomic<std::size_t> next_{0};
};

} // namespace tokenflight::detail

#endif
