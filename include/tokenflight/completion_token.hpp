#ifndef TOKENFLIGHT_COMPLETION_TOKEN_HPP
#define TOKENFLIGHT_COMPLETION_TOKEN_HPP

#include <tokenflight/error.hpp>

#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

/// @file
/// Completion tokens: the default every tokenflight operation uses, and with_diagnostics, which
/// turns a failure into an error_with_diagnostics exception for `use_awaitable`, `use_future`
/// and `deferred` users.

namespace tokenflight {

/// The completion token of an operation called without one: the executor's default
/// (`boost::asio::default_completion_token_t<Executor>`) where the executor names one, else
/// `boost::asio::deferred` (Boost 1.81's any_io_executor names none; later Asio releases make
/// deferred every executor's default). So `co_await source.async_get_token()` works in any
/// `boost::asio::awaitable`, and `auto op = source.async_get_token();` is a deferred operation
/// that starts when it is awaited or called with a token.
template <class Executor>
using default_completion_token_t =
    std::conditional_t<std::is_void_v<boost::asio::default_completion_token_t<Executor>>, boost::asio::deferred_t,
                       boost::asio::default_completion_token_t<Executor>>;

/// The completion token adapter returned by with_diagnostics().
template <class CompletionToken>
struct with_diagnostics_t {
    CompletionToken token; ///< the token that receives the adapted completion
};

/// Adapts a completion token so that an operation with signature `void(error_code, T...)`
/// completes with `void(std::exception_ptr, T...)`, the exception being an
/// error_with_diagnostics that carries what the server said. With `use_awaitable` the exception
/// is thrown from `co_await`, with `use_future` from `get()`; on success the pointer is null.
///
/// For tokenflight's operations that take no `diagnostics&` (with one, the caller's object is
/// written and the exception's diagnostics stay empty). Like Boost.MySQL's with_diagnostics.
///
/// @code
/// try {
///     auto token = co_await source.async_get_token(tokenflight::with_diagnostics(asio::use_awaitable));
/// } catch (const tokenflight::error_with_diagnostics& e) {
///     log(e.code(), e.get_diagnostics().to_string());
/// }
/// @endcode
template <class CompletionToken>
with_diagnostics_t<std::decay_t<CompletionToken>> with_diagnostics(CompletionToken&& token) {
    return {std::forward<CompletionToken>(token)};
}

/// The handler with_diagnostics wraps around the one its token makes: it owns the diagnostics
/// the operation writes, at a stable address, and turns an error into an exception. Its
/// associated executor, allocator and cancellation slot are the wrapped handler's. Made by
/// with_diagnostics; not for direct use.
template <class Handler>
class with_diagnostics_handler {
public:
    /// Wraps `h`.
    explicit with_diagnostics_handler(Handler h) : handler_(std::move(h)), diag_(std::make_unique<diagnostics>()) {}

    /// Completes the wrapped handler: a null exception_ptr on success, else an
    /// error_with_diagnostics made of `ec` and the diagnostics written meanwhile.
    template <class... Args>
    void operator()(error_code ec, Args&&... args) {
        std::exception_ptr ep;
        if (ec) ep = std::make_exception_ptr(error_with_diagnostics(ec, std::move(*diag_)));
        std::move(handler_)(std::move(ep), std::forward<Args>(args)...);
    }

    /// Where tokenflight's operations write the diagnostics.
    diagnostics* diagnostics_slot() const noexcept { return diag_.get(); }
    /// The wrapped handler.
    const Handler& get() const noexcept { return handler_; }

private:
    Handler handler_;
    std::unique_ptr<diagnostics> diag_;
};

/// Where an operation should write diagnostics: `given` when the caller passed one, else the
/// slot of a with_diagnostics handler, else nowhere (nullptr).
template <class Handler>
diagnostics* diagnostics_target(diagnostics* given, Handler& h) noexcept {
    if (given) return given;
    if constexpr (requires { h.diagnostics_slot(); })
        return h.diagnostics_slot();
    else
        return nullptr;
}

} // namespace tokenflight

/// Completing through with_diagnostics: `void(error_code, T...)` becomes
/// `void(std::exception_ptr, T...)`.
template <class CompletionToken, class... Args>
struct boost::asio::async_result<tokenflight::with_diagnostics_t<CompletionToken>,
                                 void(tokenflight::error_code, Args...)> {
    /// Initiates the operation with the wrapped token and a with_diagnostics_handler.
    template <class Initiation, class RawToken, class... InitArgs>
    static auto initiate(Initiation&& initiation, RawToken&& token, InitArgs&&... args) {
        return boost::asio::async_initiate<CompletionToken, void(std::exception_ptr, Args...)>(
            [init = std::forward<Initiation>(initiation)](auto handler, auto&&... init_args) mutable {
                std::move(init)(tokenflight::with_diagnostics_handler<decltype(handler)>(std::move(handler)),
                                std::forward<decltype(init_args)>(init_args)...);
            },
            token.token, std::forward<InitArgs>(args)...);
    }
};

/// A with_diagnostics_handler is associated with what its wrapped handler is associated with.
template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, tokenflight::with_diagnostics_handler<Handler>, DefaultCandidate> {
    /// The wrapped handler's associated type.
    using type = typename Associator<Handler, DefaultCandidate>::type;
    /// The wrapped handler's associated object.
    static type get(const tokenflight::with_diagnostics_handler<Handler>& h) noexcept {
        return Associator<Handler, DefaultCandidate>::get(h.get());
    }
    /// The wrapped handler's associated object, or `c`.
    static auto get(const tokenflight::with_diagnostics_handler<Handler>& h, const DefaultCandidate& c) noexcept
        -> decltype(Associator<Handler, DefaultCandidate>::get(h.get(), c)) {
        return Associator<Handler, DefaultCandidate>::get(h.get(), c);
    }
};

#endif
