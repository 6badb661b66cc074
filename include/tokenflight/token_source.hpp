#ifndef TOKENFLIGHT_TOKEN_SOURCE_HPP
#define TOKENFLIGHT_TOKEN_SOURCE_HPP

#include <tokenflight/completion_token.hpp>
#include <tokenflight/credentials.hpp>
#include <tokenflight/dpop.hpp>
#include <tokenflight/error.hpp>
#include <tokenflight/http/connection_pool.hpp>
#include <tokenflight/shared_store.hpp>
#include <tokenflight/token.hpp>
#include <tokenflight/token_policy.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

/// @file
/// The single-flight, proactively refreshed cache of one OAuth 2.0 access token.

namespace tokenflight {

/// What happened inside a token source, for logs and metrics. Never carries a secret or a token value.
struct token_event {
    /// What happened.
    enum class kind {
        request_sent,     ///< a token request is going out (attempt numbers from 1)
        token_received,   ///< a refresh succeeded (generation set)
        attempt_failed,   ///< one attempt failed; `retry_in` says whether and when it is retried
        refresh_failed,   ///< the refresh gave up; every waiter gets `error`
        token_adopted,    ///< the shared store gave another process's token: no request (generation set)
        shared_store_failed, ///< the shared store could not help (`error`): the source requests its own
    };
    kind what = kind::request_sent;       ///< what happened
    int attempt = 0;                      ///< the token request's number within its refresh (from 1)
    bool background = false;              ///< a proactive (stale-but-valid) refresh
    std::uint64_t generation = 0;         ///< token_received: the new token's generation
    error_code error;                     ///< attempt_failed, refresh_failed, shared_store_failed: why
    const diagnostics* diag = nullptr;    ///< for attempt_failed / refresh_failed
    std::optional<clock::duration> retry_in; ///< attempt_failed: the pause before the next attempt
};

/// Options of a token source.
struct token_source_options {
    refresh_policy refresh; ///< when tokens are refreshed
    backoff_policy backoff; ///< how a failed refresh is retried, and the cool-down after it
    clock::duration request_timeout = std::chrono::seconds(10); ///< one token request
    std::size_t body_limit = 64 * 1024;                         ///< token response body
    /// For an https token URL. With credentials::certificate set, that certificate is presented,
    /// whatever `tls.identity` says.
    http::tls_options tls;
    http::proxy_options proxy; ///< egress proxy for token and metadata requests (default: the environment)
    /// DPoP (RFC 9449): proofs on token requests, and on the API requests of every client of
    /// this source; tokens bound to the source's key. Off by default.
    dpop_options dpop;
    /// Called on the source's executor for every token_event; must not block. Optional.
    /// Exceptions it throws are caught and ignored.
    std::function<void(const token_event&)> on_event;
    /// A store shared with other processes (shared_store.hpp), consulted before every token
    /// request: a token another process requested is taken instead, and only the holder of the
    /// fleet's lease requests one. Null (the default): this source alone decides.
    std::shared_ptr<shared_token_store> shared_store;
};

/// Counters of a token source.
struct token_source_stats {
    std::uint64_t token_requests = 0;     ///< HTTP requests sent to the token endpoint
    std::uint64_t token_failures = 0;     ///< refreshes that gave up
    std::uint64_t proactive_refreshes = 0;///< refreshes started while a valid token was served
    std::uint64_t reactive_refreshes = 0; ///< refreshes started by a get-newer-than request
    std::uint64_t served = 0;             ///< requests completed with a token
    std::uint64_t waited = 0;             ///< requests that had to wait for a refresh
    std::uint64_t reactive_held_back = 0; ///< newer-than requests answered errc::refresh_backoff
    std::uint64_t metadata_requests = 0;  ///< requests for the issuer's metadata (credentials::issuer)
    std::uint64_t shared_adopted = 0;     ///< tokens taken from the shared store instead of requested
    std::uint64_t shared_store_errors = 0;///< claims, publications and abandons the shared store failed
};

namespace detail {
class token_source_impl;
struct access;
} // namespace detail

/// A cache of one access token for one set of credentials (and so one scope / audience set).
///
/// - Fresh token: served at once. Stale-but-valid (within refresh-ahead of expiry): served at
///   once and one background refresh starts. Expired or none: callers wait for the one refresh.
/// - Single flight: at most one token request is in flight per source, however many callers.
/// - Transient failures are retried with backoff inside the refresh; permanent ones are not.
///   After a failure, callers without a valid token fail fast during a cool-down.
///
/// @par Thread safety
/// All member functions may be called concurrently from any thread.
///
/// @par Lifetimes (every asynchronous operation of this class)
/// - The operation holds the source's shared state, not the `token_source` object: destroying
///   the object while operations run, or before a `deferred` operation is launched, is safe;
///   they complete with `operation_aborted` or errc::closed.
/// - A `diagnostics&` passed to an operation is written when the operation completes (just
///   before its handler is invoked), or when the source is closed or destroyed, whichever comes
///   first. It must outlive both: keep it in the handler's state (for example a shared_ptr the
///   handler captures), never on a stack frame that may return before completion, and declare
///   it before the source when both are locals. In a coroutine that awaits the operation, a
///   local is fine.
///
/// @par Executors
/// Handlers run on their associated executor (a plain callback: the source's executor), never
/// inside the initiating call.
///
/// @par What keeps `io_context::run()` busy
/// A refresh in flight (token request, backoff pause) and the token pool's connections (see
/// http::connection_pool). close() or destroying the source ends them.
class token_source {
public:
    /// The executor given to the constructor.
    using executor_type = boost::asio::any_io_executor;
    /// The completion signature of the token operations.
    using token_signature = void(error_code, access_token);

    /// Checks the credentials (token URL parsed, http only to loopback unless allowed).
    /// Throws boost::system::system_error (errc::invalid_url, insecure_transport,
    /// missing_credentials) on bad configuration, without naming the secret.
    token_source(executor_type ex, credentials creds, token_source_options options = {});
    /// Closes the source (see close()).
    ~token_source();
    token_source(const token_source&) = delete;
    token_source& operator=(const token_source&) = delete;

    /// Gets a usable token: at once when one is cached, else after the (single) refresh.
    ///
    /// @par Completion signature
    /// `void(error_code, access_token)`
    ///
    /// @par Errors
    /// The refresh's error, the same for every waiter of one refresh: an oauth_errc the server
    /// answered (`ec == condition::oauth_error`), errc::server_unavailable, malformed_response,
    /// ...; transport errors (`condition::transient`); errc::closed after close().
    ///
    /// @par Per-operation cancellation
    /// All types. A cancelled wait completes with `operation_aborted`; the refresh goes on for
    /// the others and its token is cached.
    ///
    /// @par Lifetimes and thread safety
    /// See the class.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_get_token(CompletionToken&& token = CompletionToken{}) {
        return initiate(nullptr, 0, std::forward<CompletionToken>(token));
    }

    /// As async_get_token(CompletionToken&&); on error `diag` holds what the server said (it is
    /// cleared on success). It must live until completion (see the class).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_get_token(diagnostics& diag, CompletionToken&& token = CompletionToken{}) {
        return initiate(&diag, 0, std::forward<CompletionToken>(token));
    }

    /// Gets a token whose generation is greater than `generation`: what a request that got a 401
    /// with token generation g asks for. Completes at once when the cache already holds a newer
    /// token (another 401 refreshed it); otherwise joins the refresh in flight or starts one.
    /// Any number of concurrent callers with the same g cause exactly one token request.
    /// Generations count from 1; 0 asks for any token (as async_get_token). On a source that
    /// never held a token it behaves as async_get_token.
    ///
    /// Futility backoff: after a client reported that a freshly fetched token was rejected too
    /// (see client), a call that would start a refresh while the current token is still usable
    /// completes at once with errc::refresh_backoff until the backoff (1 s doubling to 60 s,
    /// ended by the first 2xx) passes.
    ///
    /// @par Completion signature
    /// `void(error_code, access_token)`
    ///
    /// @par Errors
    /// As async_get_token, and errc::refresh_backoff.
    ///
    /// @par Per-operation cancellation
    /// As async_get_token.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_get_token_after(std::uint64_t generation, CompletionToken&& token = CompletionToken{}) {
        return initiate(nullptr, generation, std::forward<CompletionToken>(token));
    }

    /// As async_get_token_after(std::uint64_t, CompletionToken&&), with diagnostics as in
    /// async_get_token(diagnostics&, CompletionToken&&).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken =
                  default_completion_token_t<executor_type>>
    auto async_get_token_after(std::uint64_t generation, diagnostics& diag, CompletionToken&& token = CompletionToken{}) {
        return initiate(&diag, generation, std::forward<CompletionToken>(token));
    }

    /// The hot path without any asynchronous machinery: the cached token when it is usable
    /// (starting a background refresh when it is stale), else an empty token.
    access_token try_get_token();

    /// Aborts every waiter with `operation_aborted`, every later request with errc::closed, the
    /// refresh in flight, and closes the token pool's connections.
    void close();

    /// The counters.
    token_source_stats stats() const;
    /// The executor given to the constructor.
    executor_type get_executor() const noexcept;
    /// The last failure's diagnostics (empty after a success).
    diagnostics last_diagnostics() const;

private:
    friend struct detail::access;
    using handler_type = boost::asio::any_completion_handler<token_signature>;

    template <class CompletionToken>
    auto initiate(diagnostics* diag, std::uint64_t newer_than, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, token_signature>(
            // The shared state, not `this`: a deferred operation may be launched after the source
            // is gone (it then completes with errc::closed).
            [impl = impl_](auto handler, diagnostics* diag, std::uint64_t newer_than) {
                diagnostics* target = diagnostics_target(diag, handler);
                start(impl, handler_type(std::move(handler)), target, newer_than);
            },
            token, diag, newer_than);
    }
    static void start(const std::shared_ptr<detail::token_source_impl>& impl, handler_type handler,
                      diagnostics* diag, std::uint64_t newer_than);

    std::shared_ptr<detail::token_source_impl> impl_;
};

} // namespace tokenflight

#endif
