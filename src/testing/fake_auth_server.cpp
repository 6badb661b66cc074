#include <tokenflight/testing/fake_auth_server.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <random>
#include <unordered_map>

namespace tokenflight::testing {

namespace asio = boost::asio;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string form_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::unordered_map<std::string, std::string> parse_form(std::string_view body) {
    std::unordered_map<std::string, std::string> out;
    while (!body.empty()) {
        auto amp = body.find('&');
        auto pair = body.substr(0, amp);
        auto eq = pair.find('=');
        out[form_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : form_decode(pair.substr(eq + 1));
        body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    }
    return out;
}

std::string random_hex(std::size_t n) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(n, '0');
    for (auto& c : s) c = digits[rng() & 15];
    return s;
}

} // namespace

struct fake_auth_server::impl {
    options opts;
    std::unique_ptr<http_server> server;

    std::atomic<std::uint64_t> token_requests{0}, issued{0}, basic{0}, post{0};
    std::atomic<std::int64_t> latency_ms{0};
    std::atomic<std::uint64_t> in_flight{0}, max_in_flight{0};
    std::deque<std::chrono::steady_clock::time_point> arrivals; // under mutex
    std::deque<std::map<std::string, std::string>> forms;       // under mutex

    // Counts a token request as in flight from its arrival until its answer is decided.
    struct in_flight_guard {
        impl& i;
        explicit in_flight_guard(impl& i) : i(i) {
            const auto now = i.in_flight.fetch_add(1) + 1;
            auto peak = i.max_in_flight.load();
            while (now > peak && !i.max_in_flight.compare_exchange_weak(peak, now)) {}
        }
        ~in_flight_guard() { i.in_flight.fetch_sub(1); }
        in_flight_guard(const in_flight_guard&) = delete;
        in_flight_guard& operator=(const in_flight_guard&) = delete;
    };
    std::atomic<std::int64_t> lifetime_s{0};

    std::mutex mutex; // knobs and registry
    int fail_count = 0;
    unsigned fail_status = 503;
    std::optional<int> fail_retry_after;
    int error_count = 0;
    std::string error_code_value, error_description;
    unsigned error_status = 400;
    int malform_count = 0;
    malformation malform = malformation::none;

    struct entry {
        std::uint64_t seq;
        std::chrono::steady_clock::time_point expires_at;
    };
    std::unordered_map<std::string, entry> tokens;
    std::uint64_t revoked_upto = 0;

    void json_reply(http::response& res, unsigned status, const boost::json::value& v) {
        res.result(status);
        res.set(http::field::content_type, "application/json");
        res.set(http::field::cache_control, "no-store");
        res.body() = boost::json::serialize(v);
    }

    void oauth_error(http::response& res, unsigned status, std::string_view error, std::string_view description) {
        json_reply(res, status, {{"error", error}, {"error_description", description}});
        if (status == 401) res.set(http::field::www_authenticate, "Basic realm=\"token\"");
    }

    asio::awaitable<reply> handle(const http::request& req, http::response& res) {
        if (req.target() != "/token" && !req.target().starts_with("/token?")) {
            res.result(http::status::not_found);
            co_return reply::send;
        }
        if (req.method() != http::verb::post) {
            res.result(http::status::method_not_allowed);
            co_return reply::send;
        }
        token_requests.fetch_add(1);
        in_flight_guard counted(*this);
        const auto form = parse_form(req.body());
        {
            std::map<std::string, std::string> recorded(form.begin(), form.end());
            recorded.erase("client_secret");
            std::lock_guard lock(mutex);
            arrivals.push_back(std::chrono::steady_clock::now());
            if (arrivals.size() > 1024) arrivals.pop_front();
            forms.push_back(std::move(recorded));
            if (forms.size() > 64) forms.pop_front();
        }
        if (auto ms = latency_ms.load(); ms > 0) {
            asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }

        // One-shot knobs, in a fixed order: plain failures, OAuth errors, malformed answers.
        std::optional<reply> special;
        {
            std::lock_guard lock(mutex);
            if (fail_count > 0) {
                --fail_count;
                res.result(fail_status);
                res.set(http::field::content_type, "text/plain");
                res.body() = "temporarily unavailable";
                if (fail_retry_after) res.set(http::field::retry_after, std::to_string(*fail_retry_after));
                special = reply::send;
            } else if (error_count > 0) {
                --error_count;
                oauth_error(res, error_status, error_code_value, error_description);
                special = reply::send;
            } else if (malform_count != 0 && malform != malformation::none) {
                if (malform_count > 0) --malform_count;
                special = malformed(req, res, malform);
            }
        }
        if (special) co_return *special;

        std::string id, secret;
        bool authenticated_somehow = false;
        if (auto auth = req[http::field::authorization]; auth.size() > 6 && auth.substr(0, 6) == "Basic ") {
            authenticated_somehow = true;
            basic.fetch_add(1);
            auto decoded = tokenflight::base64_decode(auth.substr(6));
            auto colon = decoded ? decoded->find(':') : std::string::npos;
            if (!opts.accept_basic || colon == std::string::npos) {
                oauth_error(res, 401, "invalid_client", "client authentication failed");
                co_return reply::send;
            }
            id = form_decode(std::string_view(*decoded).substr(0, colon));
            secret = form_decode(std::string_view(*decoded).substr(colon + 1));
        } else if (form.contains("client_secret")) {
            authenticated_somehow = true;
            post.fetch_add(1);
            if (!opts.accept_post) {
                oauth_error(res, 401, "invalid_client", "client authentication failed");
                co_return reply::send;
            }
            id = form.contains("client_id") ? form.at("client_id") : "";
            secret = form.at("client_secret");
        }
        if (!authenticated_somehow || id != opts.client_id || secret != opts.client_secret) {
            oauth_error(res, 401, "invalid_client", "client authentication failed");
            co_return reply::send;
        }
        if (auto g = form.find("grant_type"); g == form.end() || g->second != "client_credentials") {
            oauth_error(res, 400, "unsupported_grant_type", "only client_credentials is supported");
            co_return reply::send;
        }
        std::string scope;
        if (auto s = form.find("scope"); s != form.end()) scope = s->second;
        if (!opts.allowed_scopes.empty()) {
            std::string_view rest = scope;
            while (!rest.empty()) {
                auto sp = rest.find(' ');
                auto one = rest.substr(0, sp);
                if (!one.empty() &&
                    std::find(opts.allowed_scopes.begin(), opts.allowed_scopes.end(), one) == opts.allowed_scopes.end()) {
                    oauth_error(res, 400, "invalid_scope", "scope not allowed: " + std::string(one));
                    co_return reply::send;
                }
                rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
            }
        }

        const auto lifetime = std::chrono::seconds(lifetime_s.load());
        std::string token;
        {
            std::lock_guard lock(mutex);
            const auto seq = issued.fetch_add(1) + 1;
            token = "tf." + std::to_string(seq) + "." + random_hex(32);
            tokens.emplace(token, entry{seq, std::chrono::steady_clock::now() + lifetime});
        }
        boost::json::object body{{"access_token", token}, {"token_type", opts.token_type}};
        if (!opts.omit_expires_in) {
            if (opts.expires_in_as_string)
                body["expires_in"] = std::to_string(lifetime.count());
            else
                body["expires_in"] = lifetime.count();
        }
        if (!scope.empty()) body["scope"] = scope;
        json_reply(res, 200, body);
        co_return reply::send;
    }

    reply malformed(const http::request& req, http::response& res, malformation m) {
        res.result(http::status::ok);
        switch (m) {
        case malformation::echo_request: {
            // A careless server that repeats what it was sent, secret included.
            std::string echoed = std::string(req[http::field::authorization]) + ' ' + form_decode(req.body());
            json_reply(res, 400,
                       {{"error", "invalid_request"}, {"error_description", "cannot process: " + echoed}, {"echo", echoed}});
            return reply::send;
        }
        case malformation::html:
            res.set(http::field::content_type, "text/html");
            res.body() = "<html><body><h1>502 Bad Gateway</h1></body></html>";
            return reply::send;
        case malformation::truncated_json:
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"access_token":"tf.trunc","token_ty)";
            return reply::send;
        case malformation::no_access_token:
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"token_type":"Bearer","expires_in":3600})";
            return reply::send;
        case malformation::bad_expires_in:
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"access_token":"tf.bad-expiry-token-value","token_type":"Bearer","expires_in":"abc"})";
            return reply::send;
        case malformation::huge_body:
            res.set(http::field::content_type, "application/json");
            res.body().assign(opts.huge_body_size, ' ');
            return reply::send;
        case malformation::error_with_200:
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"error":"invalid_request","error_description":"sent with HTTP 200"})";
            return reply::send;
        case malformation::reset_mid_body:
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"access_token":"tf.never-complete-token-value","token_type":"Bearer","expires_in":3600})";
            return reply::reset_mid_body;
        case malformation::close_before_headers: return reply::close;
        case malformation::stall: return reply::stall;
        case malformation::none: break;
        }
        return reply::send;
    }
};

fake_auth_server::fake_auth_server() : fake_auth_server(options{}) {}

fake_auth_server::fake_auth_server(options opts) : impl_(std::make_shared<impl>()) {
    impl_->opts = std::move(opts);
    impl_->lifetime_s = impl_->opts.lifetime.count();
    auto server_opts = impl_->opts.server;
    server_opts.threads = impl_->opts.threads;
    impl_->server = std::make_unique<http_server>(
        [i = impl_.get()](const http::request& req, http::response& res) { return i->handle(req, res); }, server_opts);
}

fake_auth_server::~fake_auth_server() { impl_->server->stop(); }

std::string fake_auth_server::token_url() const { return impl_->server->base_url() + "/token"; }

tokenflight::credentials fake_auth_server::client_credentials() const {
    tokenflight::credentials c;
    c.token_url = token_url();
    c.client_id = impl_->opts.client_id;
    c.client_secret = tokenflight::secret(impl_->opts.client_secret);
    return c;
}
std::uint16_t fake_auth_server::port() const noexcept { return impl_->server->port(); }
http_server& fake_auth_server::server() noexcept { return *impl_->server; }

void fake_auth_server::set_latency(std::chrono::milliseconds latency) { impl_->latency_ms = latency.count(); }
void fake_auth_server::set_lifetime(std::chrono::seconds lifetime) { impl_->lifetime_s = lifetime.count(); }

void fake_auth_server::fail_next(int count, unsigned status, std::optional<int> retry_after_seconds) {
    std::lock_guard lock(impl_->mutex);
    impl_->fail_count = count;
    impl_->fail_status = status;
    impl_->fail_retry_after = retry_after_seconds;
}

void fake_auth_server::error_next(int count, std::string error, std::string description, unsigned status) {
    std::lock_guard lock(impl_->mutex);
    impl_->error_count = count;
    impl_->error_code_value = std::move(error);
    impl_->error_description = std::move(description);
    impl_->error_status = status;
}

void fake_auth_server::malform_next(int count, malformation m) {
    std::lock_guard lock(impl_->mutex);
    impl_->malform_count = count;
    impl_->malform = m;
}

std::uint64_t fake_auth_server::token_requests() const noexcept { return impl_->token_requests.load(); }
std::uint64_t fake_auth_server::tokens_issued() const noexcept { return impl_->issued.load(); }
std::uint64_t fake_auth_server::basic_auth_requests() const noexcept { return impl_->basic.load(); }
std::uint64_t fake_auth_server::post_auth_requests() const noexcept { return impl_->post.load(); }
std::uint64_t fake_auth_server::max_concurrent_requests() const noexcept { return impl_->max_in_flight.load(); }
std::vector<std::chrono::steady_clock::time_point> fake_auth_server::request_times() const {
    std::lock_guard lock(impl_->mutex);
    return {impl_->arrivals.begin(), impl_->arrivals.end()};
}
std::vector<std::map<std::string, std::string>> fake_auth_server::request_forms() const {
    std::lock_guard lock(impl_->mutex);
    return {impl_->forms.begin(), impl_->forms.end()};
}

fake_auth_server::verdict fake_auth_server::check(std::string_view token) const {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->tokens.find(std::string(token));
    if (it == impl_->tokens.end()) return verdict::unknown;
    if (it->second.seq <= impl_->revoked_upto) return verdict::revoked;
    if (std::chrono::steady_clock::now() >= it->second.expires_at) return verdict::expired;
    return verdict::valid;
}

void fake_auth_server::revoke_all() {
    std::lock_guard lock(impl_->mutex);
    impl_->revoked_upto = impl_->issued.load();
}

} // namespace tokenflight::testing
