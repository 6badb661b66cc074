// Private to tokenflight: the token source's shared state. The client reaches it through
// detail::access to wait on the source and report what API responses say about its tokens.
#ifndef TOKENFLIGHT_SRC_TOKEN_SOURCE_IMPL_HPP
#define TOKENFLIGHT_SRC_TOKEN_SOURCE_IMPL_HPP

#include "token_cache.hpp"

#include <tokenflight/token_endpoint.hpp>
#include <tokenflight/token_source.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <map>
#include <mutex>

namespace tokenflight::detail {

namespace asio = boost::asio;

/// Why a refresh starts.
enum class refresh_cause {
    missing,  ///< no usable token (none yet, expired): callers wait for it
    stale,    ///< the token is stale but valid: it is served meanwhile (a background refresh)
    rejected, ///< a token newer than a generation an API refused was asked for (after a 401)
};

/// The token source's state, shared by every operation (they hold it, so destroying the public
/// object while they run is safe).
///
/// Locking: mutex_ guards cache_ and the waiters; it is never held across I/O or a handler. The
/// refresh runs on strand_, which alone touches its cancellation signal. try_get() reads a fresh
/// token without the mutex (see publish()).
class token_source_impl : public std::enable_shared_from_this<token_source_impl> {
public:
    using handler_type = asio::any_completion_handler<void(error_code, access_token)>;

    token_source_impl(asio::any_io_executor ex, credentials creds, token_source_options options);

    /// Completes `handler` with a usable token newer than `newer_than` (0: any), now or after
    /// the refresh. `diag`, when set, gets the failure's diagnostics at completion.
    void start(handler_type handler, diagnostics* diag, std::uint64_t newer_than);

    /// The hot path: a fresh token without the mutex, else the locked path. Inline: every request
    /// of the client's steady state calls it.
    access_token try_get() {
        thread_local replica mine;
        const auto now = clock::now().time_since_epoch().count();
        const auto g1 = published_generation_.load(std::memory_order_acquire);
        const auto fresh_until = published_fresh_until_.load(std::memory_order_acquire);
        const auto g2 = published_generation_.load(std::memory_order_acquire);
        if (g1 != 0 && g1 == g2 && now < fresh_until && mine.source == id_ && mine.generation == g1) return mine.token;
        return try_get_locked(mine);
    }

    /// A 2xx for a request sent with generation `g`. Per response, so the common case (a known
    /// good generation, no backoff) is two relaxed loads and no lock.
    void report_ok(std::uint64_t g) {
        if (g <= ok_generation_.load(std::memory_order_relaxed) && !futility_backoff_.load(std::memory_order_relaxed))
            return;
        report_ok_locked(g);
    }
    /// A resend with generation `g` got 401 again (see token_cache::on_futile_refresh).
    void report_futile(std::uint64_t g);
    /// The cached token if it is usable and newer than `g`, else an empty token; never refreshes.
    access_token newer_than(std::uint64_t g) const;

    void close();
    token_source_stats stats() const;
    diagnostics last_diagnostics() const;

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    /// The pool token requests go through (the end-to-end fuzz target sets its transport).
    http::connection_pool& pool() noexcept { return pool_; }
    /// Unique per source in the process (generations count from 1 in every source).
    std::uint64_t id() const noexcept { return id_; }
    /// credentials::allow_insecure_http: may this source's tokens go over plain http?
    bool allows_insecure_http() const noexcept { return creds_.allow_insecure_http; }
    /// The DPoP prover of this source's key; null without DPoP.
    const dpop_prover* dpop() const noexcept { return dpop_ ? &*dpop_ : nullptr; }
    /// Server DPoP nonces by origin, shared by the token requests and the clients' API requests.
    dpop_nonces& nonces() noexcept { return nonces_; }
    /// The client certificate of the credentials (set at construction, then only read): the
    /// clients present it on API requests, as certificate-bound tokens need.
    const http::client_identity& identity() const noexcept { return creds_.certificate; }

private:
    // Each thread hands out its own copy of the token, so that copies made on different threads
    // never share a reference count.
    struct replica {
        std::uint64_t source = 0, generation = 0;
        access_token token;
    };
    struct waiter {
        handler_type handler;
        diagnostics* diag = nullptr;
    };
    // What the cache said to one request, taken under the lock and acted on after it.
    struct answer {
        token_cache::action act;
        access_token token; // set when the action serves
    };

    access_token try_get_locked(replica& mine);
    void report_ok_locked(std::uint64_t g);
    answer ask(std::uint64_t newer_than);
    void follow(const answer& a, std::uint64_t newer_than);
    void publish(const access_token& t, std::optional<clock::time_point> until = std::nullopt);
    void complete(waiter w, error_code ec, access_token t, const diagnostics* d);
    void cancel_waiter(std::uint64_t id);
    void launch_refresh(refresh_cause cause);
    asio::awaitable<void> refresh(std::shared_ptr<token_source_impl> self, refresh_cause cause);
    error_code set_token_endpoint(std::string url);
    asio::awaitable<error_code> discover(diagnostics& diag);
    struct claimed {
        std::optional<token_response> token; // another process's, to take
        clock::time_point sent{};            // ... when it was requested, on this clock
        clock::duration lifetime{};          // ... and its whole life
        bool lease = false;
        bool store_helped = false; // the claim succeeded: publish what is fetched
        bool cancelled = false;    // the source was closed while it claimed
    };
    asio::awaitable<claimed> claim_shared(refresh_cause cause);
    asio::awaitable<void> publish_shared(const access_token& t, refresh_cause cause);
    asio::awaitable<void> abandon_shared(refresh_cause cause);
    /// Caches `r` and completes every waiter with it; returns the token.
    /// `lifetime`: the exact one, when known finer than r.lifetime's seconds.
    access_token succeed(token_response r, clock::time_point sent, refresh_cause cause,
                         token_event::kind what = token_event::kind::token_received,
                         std::optional<clock::duration> lifetime = std::nullopt);
    void fail(error_code ec, diagnostics diag, int attempts, refresh_cause cause);
    void emit(token_event::kind what, int attempt, refresh_cause cause, error_code ec = {},
              const diagnostics* diag = nullptr, std::optional<clock::duration> retry_in = std::nullopt,
              std::uint64_t generation = 0);

    asio::any_io_executor ex_;
    asio::strand<asio::any_io_executor> strand_; // the refresh coroutine and its cancellation signal
    credentials creds_;
    token_source_options options_;
    http::location location_;  // of the token endpoint; changed by discovery, on the strand
    std::string audience_;     // of client assertions: credentials' or the token endpoint URL
    bool uses_discovery_ = false; // the token endpoint comes from the issuer's metadata (const)
    bool discover_ = false;    // fetch the issuer's metadata before the next refresh (strand)
    std::optional<dpop_prover> dpop_; // set at construction, then only read
    dpop_nonces nonces_;
    redactor redactor_{creds_.client_secret, creds_.client_id}; // after creds_: built from it

    mutable std::mutex mutex_; // guards cache_, waiters_, next_waiter_; never held across I/O
    token_cache cache_;
    std::map<std::uint64_t, waiter> waiters_; // ordered: completed in arrival order
    std::uint64_t next_waiter_ = 0;

    http::connection_pool pool_;
    asio::cancellation_signal refresh_cancel_;
    std::atomic<client_auth> auth_; // the method that worked last

    // try_get's lock-free view of the cached token; see publish().
    std::atomic<std::uint64_t> published_generation_{0};
    std::atomic<clock::rep> published_fresh_until_{0};
    const std::uint64_t id_;

    std::atomic<std::uint64_t> token_requests_{0}, token_failures_{0}, proactive_{0}, reactive_{0}, served_{0},
        waited_{0}, held_back_{0}, metadata_requests_{0}, shared_adopted_{0}, shared_errors_{0};
    std::atomic<std::uint64_t> ok_generation_{0}; // mirrors of the cache's, for report_ok's fast path
    std::atomic<bool> futility_backoff_{false};
};

} // namespace tokenflight::detail

#endif
