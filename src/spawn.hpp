// Private to tokenflight: runs a request coroutine and completes a type-erased handler with its
// result, carrying the handler's cancellation slot into the coroutine.
#ifndef TOKENFLIGHT_SRC_SPAWN_HPP
#define TOKENFLIGHT_SRC_SPAWN_HPP

#include <tokenflight/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
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

/// Runs a request coroutine on `ex` and completes `handler` with its result, on the handler's
/// associated executor, or on `ex` when it has none. For the slow paths only (a token to wait
/// for, a 401 to answer): the steady state of a request spawns nothing (see client.cpp and
/// http/pool_impl.hpp).
///
/// `ex` must serialise the coroutine: co_spawn emits a cancellation of `handler`'s slot by
/// dispatching to `ex`, and that emission must not race the coroutine or the completions it
/// awaits. When the io_context may run on several threads, pass a strand of the coroutine's own
/// (client.cpp makes a fresh one for every slow-path request).
template <class Result>
void spawn_request(const boost::asio::any_io_executor& ex, boost::asio::awaitable<std::tuple<error_code, Result>> op,
                   boost::asio::any_completion_handler<void(error_code, Result)> handler) {
    namespace asio = boost::asio;
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto completion_ex = asio::get_associated_executor(handler, ex);
    asio::co_spawn(ex, std::move(op),
                   spawn_completion<Result>{std::move(handler), std::move(completion_ex), slot});
}

} // namespace tokenflight::detail

#endif
