#include <tokenflight/testing/fake_api_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>

#include <array>
#include <deque>
#include <mutex>
#include <random>

namespace tokenflight::testing {

namespace asio = boost::asio;

struct fake_api_server::impl {
    fake_auth_server* auth = nullptr;
    options opts;
    std::unique_ptr<http_server> server;
    std::atomic<std::uint64_t> requests{0}, expired{0}, missing_headers{0}, resets{0};
    std::atomic<double> reset_probability{0.0};
    std::array<std::atomic<std::uint64_t>, 600> by_status{};
    mutable std::mutex mutex;
    std::map<std::string, std::uint64_t> by_token;
    std::deque<std::string> bodies, authorizations;

    // The token in an Authorization header, or nullopt when the header has the wrong form.
    std::optional<std::string_view> token_of(std::string_view header) const {
        if (opts.auth_scheme) {
            const std::string& scheme = *opts.auth_scheme;
            if (scheme.empty()) return header;
            if (header.size() > scheme.size() && header.starts_with(scheme) && header[scheme.size()] == ' ')
                return header.substr(scheme.size() + 1);
            return std::nullopt;
        }
        if (header.size() > 7 && boost::beast::iequals(header.substr(0, 7), "Bearer ")) header.remove_prefix(7);
        return header;
    }

    reply answer(http::response& res, unsigned status, std::string_view body) {
        res.result(status);
        res.set(http::field::content_type, "application/json");
        res.body() = body;
        if (status < by_status.size()) by_status[status].fetch_add(1);
        return reply::send;
    }

    asio::awaitable<reply> handle(const http::request& req, http::response& res) {
        if (opts.control_endpoint && req.target() == "/__control/revoke" && req.method() == http::verb::post) {
            auth->revoke_all();
            res.result(http::status::no_content);
            co_return reply::send;
        }
        requests.fetch_add(1);
        if (const double p = reset_probability.load(); p > 0) {
            thread_local std::minstd_rand rng{std::random_device{}()};
            if (std::uniform_real_distribution<double>(0, 1)(rng) < p) {
                resets.fetch_add(1);
                co_return reply::reset;
            }
        }
        if (opts.latency.count() > 0) {
            asio::steady_timer t(co_await asio::this_coro::executor, opts.latency);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        for (const auto& [name, value] : opts.expected_headers) {
            if (req[name] != value) {
                missing_headers.fetch_add(1);
                break;
            }
        }
        const std::string_view header = req[http::field::authorization];
        const auto token = token_of(header);
        {
            std::lock_guard lock(mutex);
            ++by_token[std::string(token.value_or(header))];
            bodies.emplace_back(req.body());
            if (bodies.size() > 16) bodies.pop_front();
            authorizations.emplace_back(header);
            if (authorizations.size() > 16) authorizations.pop_front();
        }
        if (!opts.api_key.empty() && req["x-api-key"] != opts.api_key)
            co_return answer(res, 403, R"({"error":"forbidden","message":"missing or wrong x-api-key"})");
        if (!token) {
            res.set(http::field::www_authenticate,
                    R"(Bearer realm="api", error="invalid_request", error_description="wrong Authorization scheme")");
            co_return answer(res, 401, R"({"error":"invalid_request"})");
        }

        switch (auth->check(*token)) {
        case fake_auth_server::verdict::valid: co_return answer(res, 200, R"({"ok":true})");
        case fake_auth_server::verdict::expired:
            expired.fetch_add(1);
            res.set(http::field::www_authenticate,
                    R"(Bearer realm="api", error="invalid_token", error_description="The access token expired")");
            co_return answer(res, 401, R"({"error":"invalid_token"})");
        case fake_auth_server::verdict::revoked:
        case fake_auth_server::verdict::unknown:
            res.set(http::field::www_authenticate,
                    R"(Bearer realm="api", error="invalid_token", error_description="The access token is invalid")");
            co_return answer(res, 401, R"({"error":"invalid_token"})");
        }
        co_return answer(res, 500, "{}");
    }
};

fake_api_server::fake_api_server(fake_auth_server& auth) : fake_api_server(auth, options{}) {}

fake_api_server::fake_api_server(fake_auth_server& auth, options opts) : impl_(std::make_shared<impl>()) {
    impl_->auth = &auth;
    impl_->opts = std::move(opts);
    impl_->reset_probability = impl_->opts.reset_probability;
    auto server_opts = impl_->opts.server;
    server_opts.threads = impl_->opts.threads;
    impl_->server = std::make_unique<http_server>(
        [i = impl_.get()](const http::request& req, http::response& res) { return i->handle(req, res); }, server_opts);
}

fake_api_server::~fake_api_server() { impl_->server->stop(); }

std::string fake_api_server::url(std::string_view path) const { return impl_->server->base_url() + std::string(path); }
http_server& fake_api_server::server() noexcept { return *impl_->server; }
void fake_api_server::revoke_all() { impl_->auth->revoke_all(); }
void fake_api_server::set_reset_probability(double p) { impl_->reset_probability = p; }
std::uint64_t fake_api_server::resets() const noexcept { return impl_->resets.load(); }
std::uint64_t fake_api_server::requests() const noexcept { return impl_->requests.load(); }
std::uint64_t fake_api_server::count_status(unsigned status) const noexcept {
    return status < impl_->by_status.size() ? impl_->by_status[status].load() : 0;
}
std::uint64_t fake_api_server::expired_token_requests() const noexcept { return impl_->expired.load(); }
std::uint64_t fake_api_server::requests_missing_headers() const noexcept { return impl_->missing_headers.load(); }
std::map<std::string, std::uint64_t> fake_api_server::requests_by_token() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->by_token;
}
std::vector<std::string> fake_api_server::recent_bodies() const {
    std::lock_guard lock(impl_->mutex);
    return {impl_->bodies.begin(), impl_->bodies.end()};
}
std::vector<std::string> fake_api_server::recent_authorizations() const {
    std::lock_guard lock(impl_->mutex);
    return {impl_->authorizations.begin(), impl_->authorizations.end()};
}

} // namespace tokenflight::testing
