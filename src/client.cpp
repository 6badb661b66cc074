#include <tokenflight/client.hpp>

#include "http/pool_impl.hpp"
#include "spawn.hpp"
#include "token_source_impl.hpp"

#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/www_authenticate.hpp>

#include <boost/beast/core/string.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tokenflight {

namespace detail {

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// Waits on the source from inside a coroutine without the public wrapper's indirection.
auto wait_for_token(const std::shared_ptr<token_source_impl>& src, std::optional<std::uint64_t> after) {
    return asio::async_initiate<decltype(tuple_awaitable), void(error_code, access_token)>(
        [src, after](auto handler) { src->start(token_source_impl::handler_type(std::move(handler)), nullptr, after); },
        tuple_awaitable);
}
} // namespace

class client_impl {
public:
    client_impl(std::shared_ptr<token_source_impl> source, std::shared_ptr<http::detail::pool_impl> pool,
                client_options options)
        : source_(std::move(source)), pool_(std::move(pool)), options_(std::move(options)) {
        // Checked again where every request is serialised; failing here tells the user at once.
        for (const auto& [name, value] : options_.default_headers) {
            if (!http::is_token(name)) throw boost::system::system_error(make_error_code(errc::invalid_header_name));
            if (!http::is_field_value(value))
                throw boost::system::system_error(make_error_code(errc::invalid_header_value));
        }
        if (options_.auth_scheme && !options_.auth_scheme->empty() && !http::is_token(*options_.auth_scheme))
            throw boost::system::system_error(make_error_code(errc::invalid_header_value));
    }

    // `self` keeps the client's state alive while the request runs, even if the client is destroyed.
    asio::awaitable<std::tuple<error_code, http::response>> run([[maybe_unused]] std::shared_ptr<client_impl> self, http::location to,
                                                                http::request req) {
        co_await asio::this_coro::throw_if_cancelled(false);
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        requests_.fetch_add(1, std::memory_order_relaxed);
        using result = std::tuple<error_code, http::response>;

        if (!to.origin.tls && !options_.allow_insecure_http && !loopback(to.origin.host))
            co_return result{errc::insecure_transport, {}};
        if (req.target().empty()) req.target(to.target);
        for (const auto& [name, value] : options_.default_headers)
            if (req.find(name) == req.end()) req.set(name, value);

        // Hot path: a cached usable token, no asynchronous wait at all.
        access_token token = source_->try_get();
        if (!token) {
            auto [ec, t] = co_await wait_for_token(source_, std::nullopt);
            if (ec) {
                token_errors_.fetch_add(1, std::memory_order_relaxed);
                co_return result{ec, {}};
            }
            token = std::move(t);
        }
        if (auto aec = authorize(req, token)) {
            token_errors_.fetch_add(1, std::memory_order_relaxed);
            co_return result{aec, {}};
        }
        auto [ec, res] = co_await pool_->send(to.origin, req, send_options_);
        if (ec || res.result() != http::status::unauthorized) {
            if (!ec) note_answer(res, token);
            co_return result{ec, std::move(res)};
        }
        // A token cannot fix a missing scope (RFC 6750 section 3.1): return the 401 as it is.
        if (insufficient_scope(res)) co_return result{ec, std::move(res)};

        // 401: the token was revoked or expired early. One newer token for every request that
        // saw this generation fail, then a resend; never a loop.
        auto [tec, newer] = co_await wait_for_token(source_, token.generation());
        if (tec == errc::refresh_backoff) {
            // New tokens did not help lately: the 401 stands, and no token request is made.
            held_back_.fetch_add(1, std::memory_order_relaxed);
            co_return result{error_code{}, std::move(res)};
        }
        if (tec) {
            token_errors_.fetch_add(1, std::memory_order_relaxed);
            co_return result{tec, {}};
        }
        // Up to two more sends: with the newer token, and, if that one is rejected while the cache
        // already holds a newer still (the request spanned two revocations), with that one.
        for (int sends = 2;; ++sends) {
            resends_.fetch_add(1, std::memory_order_relaxed);
            if (auto aec = authorize(req, newer)) {
                token_errors_.fetch_add(1, std::memory_order_relaxed);
                co_return result{aec, {}};
            }
            auto [rec, rres] = co_await pool_->send(to.origin, req, send_options_);
            if (rec || rres.result() != http::status::unauthorized) {
                if (!rec) note_answer(rres, newer);
                co_return result{rec, std::move(rres)};
            }
            if (insufficient_scope(rres)) co_return result{rec, std::move(rres)}; // the token was fine
            auto newest = source_->newer_than(newer.generation());
            if (!newest || sends == max_sends) {
                // A 401 for the newest token: final. If that token never worked, refreshing was
                // futile and further reactive refreshes of the source are spaced out.
                source_->report_futile(newer.generation());
                unauthorized_after_resend_.fetch_add(1, std::memory_order_relaxed);
                co_return result{rec, std::move(rres)};
            }
            newer = std::move(newest);
        }
    }

    client_stats stats() const {
        client_stats s;
        s.requests = requests_.load(std::memory_order_relaxed);
        s.resends_after_401 = resends_.load(std::memory_order_relaxed);
        s.unauthorized_after_resend = unauthorized_after_resend_.load(std::memory_order_relaxed);
        s.token_errors = token_errors_.load(std::memory_order_relaxed);
        s.refreshes_held_back = held_back_.load(std::memory_order_relaxed);
        return s;
    }

    const asio::any_io_executor& executor() const noexcept { return pool_->executor(); }
    const asio::any_io_executor& next_strand() noexcept { return pool_->next_strand(); }

private:
    // is_loopback_host parses an address; requests to one host ask again and again.
    static bool loopback(const std::string& host) {
        thread_local std::string last_host;
        thread_local bool last_result = false;
        if (host != last_host) {
            last_result = http::is_loopback_host(host);
            last_host = host;
        }
        return last_result;
    }

    static constexpr int max_sends = 3;

    // A 2xx proves the generation works (and ends a futility backoff).
    void note_answer(const http::response& res, const access_token& t) {
        if (res.result_int() / 100 == 2) source_->report_ok(t.generation());
    }

    static bool insufficient_scope(const http::response& res) {
        for (auto [it, end] = res.equal_range(http::field::www_authenticate); it != end; ++it)
            for (const auto& c : parse_www_authenticate(it->value()))
                if (boost::beast::iequals(c.error(), "insufficient_scope")) return true;
        return false;
    }

    error_code authorize(http::request& req, const access_token& t) const {
        // RFC 6749 section 7.1: a client uses a token type it understands. Only Bearer (in any
        // case) is, unless the caller chose the scheme; it is sent in its canonical spelling.
        std::string_view scheme = "Bearer";
        if (options_.auth_scheme)
            scheme = *options_.auth_scheme;
        else if (!boost::beast::iequals(t.type(), "bearer"))
            return errc::unsupported_token_type;
        std::string value;
        value.reserve(scheme.size() + 1 + t.value().size());
        if (!scheme.empty()) {
            value += scheme;
            value += ' ';
        }
        value += t.value();
        req.set(http::field::authorization, value);
        return {};
    }

    std::shared_ptr<token_source_impl> source_;
    std::shared_ptr<http::detail::pool_impl> pool_;
    client_options options_;
    const http::send_options send_options_{}; // named: no braced temporary inside a co_await (GCC 12)
    std::atomic<std::uint64_t> requests_{0}, resends_{0}, unauthorized_after_resend_{0}, token_errors_{0}, held_back_{0};
};

} // namespace detail

client::client(executor_type ex, token_source& source, client_options options)
    : owned_pool_(std::make_unique<http::connection_pool>(std::move(ex), options.pool)),
      impl_(std::make_shared<detail::client_impl>(source.impl(), owned_pool_->impl(), std::move(options))) {}

client::client(token_source& source, http::connection_pool& pool, client_options options)
    : impl_(std::make_shared<detail::client_impl>(source.impl(), pool.impl(), std::move(options))) {}

client::~client() = default;

void client::start(const std::shared_ptr<detail::client_impl>& impl, handler_type handler, http::location to,
                   http::request req) {
    auto op = impl->run(impl, std::move(to), std::move(req));
    detail::spawn_request(impl->next_strand(), std::move(op), std::move(handler));
}

void client::start_url(const std::shared_ptr<detail::client_impl>& impl, handler_type handler, http::verb method,
                       std::string_view url, std::string body) {
    auto loc = http::parse_url(url);
    if (!loc) {
        // Still asynchronous: the handler never runs inside this call.
        auto op = [](error_code ec) -> boost::asio::awaitable<std::tuple<error_code, http::response>> {
            co_return std::tuple<error_code, http::response>{ec, {}};
        }(loc.error());
        detail::spawn_request(impl->next_strand(), std::move(op), std::move(handler));
        return;
    }
    http::request req{method, loc->target, 11};
    req.body() = std::move(body);
    auto op = impl->run(impl, std::move(*loc), std::move(req));
    detail::spawn_request(impl->next_strand(), std::move(op), std::move(handler));
}

client_stats client::stats() const { return impl_->stats(); }
client::executor_type client::get_executor() const noexcept { return impl_->executor(); }

} // namespace tokenflight
