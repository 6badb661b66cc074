#include <tokenflight/client.hpp>

#include "http/pool_impl.hpp"
#include "spawn.hpp"
#include "token_source_impl.hpp"

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
        : source_(std::move(source)), pool_(std::move(pool)), options_(std::move(options)) {}

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
        authorize(req, token);
        auto [ec, res] = co_await pool_->send(to.origin, req, send_options_);
        if (ec || res.result() != http::status::unauthorized) co_return result{ec, std::move(res)};

        // 401: the token was revoked or expired early. One newer token for every request that
        // saw this generation fail, then one resend; never a loop.
        auto [tec, newer] = co_await wait_for_token(source_, token.generation());
        if (tec) {
            token_errors_.fetch_add(1, std::memory_order_relaxed);
            co_return result{tec, {}};
        }
        resends_.fetch_add(1, std::memory_order_relaxed);
        authorize(req, newer);
        auto [ec2, res2] = co_await pool_->send(to.origin, req, send_options_);
        if (!ec2 && res2.result() == http::status::unauthorized)
            unauthorized_after_resend_.fetch_add(1, std::memory_order_relaxed);
        co_return result{ec2, std::move(res2)};
    }

    client_stats stats() const {
        return {requests_.load(std::memory_order_relaxed), resends_.load(std::memory_order_relaxed),
                unauthorized_after_resend_.load(std::memory_order_relaxed),
                token_errors_.load(std::memory_order_relaxed)};
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

    void authorize(http::request& req, const access_token& t) const {
        const std::string_view scheme = options_.auth_scheme ? std::string_view(*options_.auth_scheme) : t.type();
        std::string value;
        value.reserve(scheme.size() + 1 + t.value().size());
        if (!scheme.empty()) {
            value += scheme;
            value += ' ';
        }
        value += t.value();
        req.set(http::field::authorization, value);
    }

    std::shared_ptr<token_source_impl> source_;
    std::shared_ptr<http::detail::pool_impl> pool_;
    client_options options_;
    const http::send_options send_options_{}; // named: no braced temporary inside a co_await (GCC 12)
    std::atomic<std::uint64_t> requests_{0}, resends_{0}, unauthorized_after_resend_{0}, token_errors_{0};
};

} // namespace detail

client::client(executor_type ex, token_source& source, client_options options)
    : owned_pool_(std::make_unique<http::connection_pool>(std::move(ex), options.pool)),
      impl_(std::make_shared<detail::client_impl>(source.impl(), owned_pool_->impl(), std::move(options))) {}

client::client(token_source& source, http::connection_pool& pool, client_options options)
    : impl_(std::make_shared<detail::client_impl>(source.impl(), pool.impl(), std::move(options))) {}

client::~client() = default;

void client::start(handler_type handler, http::location to, http::request req) {
    auto op = impl_->run(impl_, std::move(to), std::move(req));
    detail::spawn_request(impl_->next_strand(), std::move(op), std::move(handler));
}

void client::start_url(handler_type handler, http::verb method, std::string_view url, std::string body) {
    auto loc = http::parse_url(url);
    if (!loc) {
        // Still asynchronous: the handler never runs inside this call.
        auto op = [](error_code ec) -> boost::asio::awaitable<std::tuple<error_code, http::response>> {
            co_return std::tuple<error_code, http::response>{ec, {}};
        }(loc.error());
        detail::spawn_request(impl_->next_strand(), std::move(op), std::move(handler));
        return;
    }
    http::request req{method, loc->target, 11};
    req.body() = std::move(body);
    auto op = impl_->run(impl_, std::move(*loc), std::move(req));
    detail::spawn_request(impl_->next_strand(), std::move(op), std::move(handler));
}

client_stats client::stats() const { return impl_->stats(); }
client::executor_type client::get_executor() const noexcept { return impl_->executor(); }

} // namespace tokenflight
