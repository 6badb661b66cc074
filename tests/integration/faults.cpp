// Fault injection: misbehaving token endpoints and APIs. In every case each request completes,
// with success or a typed error, within its timeout; the token endpoint is never hit more often
// than the backoff policy allows; and everything works again once the fault is gone.
#include <tokenflight/client.hpp>

#include "support.hpp"

#include <tokenflight/testing/fake_api_server.hpp>
#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/system/system_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <map>
#include <sstream>
#include <mutex>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

constexpr const char* the_secret = "FAULT-SECRET-7c1e";

struct setup {
    testing::fake_auth_server auth{auth_options()};
    testing::fake_api_server api{auth};
    test::io_threads io{2};
    token_source source;
    tokenflight::client client;
    std::mutex events_mutex;
    std::vector<std::string> event_texts; // everything the event hook was shown

    explicit setup(token_source_options so = options())
        : source(io.executor(), creds(auth), hook(std::move(so))), client(io.executor(), source) {}

    static testing::fake_auth_server::options auth_options() {
        testing::fake_auth_server::options o;
        o.client_id = "fault-client";
        o.client_secret = the_secret;
        o.huge_body_size = 10 * 1024 * 1024;
        return o;
    }
    static credentials creds(const testing::fake_auth_server& a) {
        credentials c;
        c.token_url = a.token_url();
        c.client_id = "fault-client";
        c.client_secret = secret(the_secret);
        c.auth = client_auth::post; // the secret travels in the body, where an echo can pick it up
        return c;
    }
    static token_source_options options() {
        token_source_options o;
        o.request_timeout = 500ms;
        o.backoff.initial = 20ms;
        o.backoff.max = 100ms;
        o.backoff.max_attempts = 3;
        o.backoff.deadline = 5s;
        o.backoff.cooldown = 2s; // longer than the storm below: one refresh serves it all
        return o;
    }
    token_source_options hook(token_source_options o) {
        o.on_event = [this](const token_event& e) {
            std::string text = e.error.message();
            if (e.diag) text += " | " + e.diag->to_string() + " | " + e.diag->body_excerpt + " | " + e.diag->error_uri;
            std::lock_guard l(events_mutex);
            event_texts.push_back(std::move(text));
        };
        return o;
    }

    // n concurrent GETs; returns the errors by kind (empty string for success)
    std::map<std::string, int> storm(int n) {
        std::mutex m;
        std::map<std::string, int> outcomes;
        std::atomic<int> done{0};
        for (int i = 0; i < n; ++i) {
            client.async_get(api.url("/f"), [&](error_code ec, http::response res) {
                std::string key = ec ? ec.message() : (res.result() == http::status::ok ? "" : "HTTP " + std::to_string(res.result_int()));
                {
                    std::lock_guard l(m);
                    ++outcomes[key];
                }
                ++done;
            });
        }
        REQUIRE_MESSAGE(test::eventually([&] { return done == n; }, 60s), "requests did not all complete");
        return outcomes;
    }

    void check_no_secret() {
        std::lock_guard l(events_mutex);
        for (const auto& t : event_texts) CHECK_MESSAGE(t.find(the_secret) == std::string::npos, t);
    }
};

struct token_fault {
    const char* name;
    testing::malformation m;
    error_code expected;
    bool transient; // retried inside the refresh
};

} // namespace

TEST_CASE("token endpoint faults: typed errors for every request, bounded retries, recovery") {
    const token_fault faults[] = {
        {"reset mid-body", testing::malformation::reset_mid_body, errc::connection_closed, true},
        {"close before headers", testing::malformation::close_before_headers, errc::connection_closed, true},
        {"stall forever", testing::malformation::stall, errc::request_timeout, true},
        {"200 with HTML", testing::malformation::html, errc::malformed_response, false},
        {"200 with a 10 MiB body", testing::malformation::huge_body, errc::body_too_large, false},
        {"echoes the secret back", testing::malformation::echo_request, oauth_errc::invalid_request, false},
    };
    for (const auto& f : faults) {
        INFO(f.name);
        setup s;
        s.auth.malform_next(-1, f.m);
        const auto start = clock::now();
        auto outcomes = s.storm(300);
        const auto took = clock::now() - start;
        REQUIRE(outcomes.size() == 1);
        CHECK(outcomes.begin()->first == error_code(f.expected).message());
        CHECK(outcomes.begin()->second == 300);
        const auto max_hits = static_cast<std::uint64_t>(f.transient ? setup::options().backoff.max_attempts : 1);
        CHECK(s.auth.token_requests() <= max_hits);
        CHECK(s.auth.token_requests() >= 1);
        CHECK(took < 10s); // within the refresh deadline, not a hang
        CHECK(s.api.requests() == 0);
        s.check_no_secret();
        diagnostics d = s.source.last_diagnostics();
        CHECK(d.to_string().find(the_secret) == std::string::npos);
        CHECK(d.body_excerpt.find(the_secret) == std::string::npos);

        // the fault goes away: after the cool-down the next request gets a token and an answer
        s.auth.malform_next(0, testing::malformation::none);
        std::this_thread::sleep_for(setup::options().backoff.cooldown);
        auto healthy = s.storm(50);
        CHECK(healthy[""] == 50);
    }
}

TEST_CASE("a token endpoint answering 503 with Retry-After is retried no faster than it asks") {
    setup s;
    s.auth.fail_next(1'000'000, 503, 1);
    auto outcomes = s.storm(200);
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes.begin()->first == error_code(errc::server_unavailable).message());
    // Retry-After: 1 s against a 5 s deadline and 3 attempts: 3 requests, each at least 1 s after
    // the one before, as the server saw them
    CHECK(s.auth.token_requests() == 3);
    const auto times = s.auth.request_times();
    REQUIRE(times.size() == 3);
    CHECK(times[1] - times[0] >= 1s);
    CHECK(times[2] - times[1] >= 1s);
    s.check_no_secret();
}

TEST_CASE("an API that resets connections at random under a 10,000-request fan-out") {
    setup s;
    s.api.set_reset_probability(0.05);
    auto outcomes = s.storm(10'000);
    int total = 0;
    for (const auto& [kind, n] : outcomes) {
        total += n;
        // success, or the transport's typed error for a reset connection; nothing else
        const bool expected = kind.empty() || kind == error_code(errc::connection_closed).message() ||
                              kind == error_code(asio::error::connection_reset).message();
        CHECK_MESSAGE(expected, kind);
    }
    CHECK(total == 10'000);
    CHECK(s.api.resets() > 0);
    CHECK(outcomes[""] > 9'000); // resends on fresh connections save most of them
    CHECK(s.auth.token_requests() == 1);

    // the pool recovers completely
    s.api.set_reset_probability(0.0);
    auto healthy = s.storm(2'000);
    CHECK(healthy[""] == 2'000);
}

TEST_CASE("secret hygiene: nothing printable on any error path carries the secret") {
    std::vector<std::string> printed;
    const auto keep = [&](const error_code& ec, const diagnostics& d) {
        printed.push_back(ec.message());
        printed.push_back(d.to_string());
        printed.push_back(d.body_excerpt);
        printed.push_back(d.oauth_error + d.error_description + d.error_uri);
    };
    {
        // wrong secret, every malformation, a plain failure, then closing with waiters
        setup s;
        const testing::malformation all[] = {
            testing::malformation::html,         testing::malformation::truncated_json,
            testing::malformation::no_access_token, testing::malformation::bad_expires_in,
            testing::malformation::error_with_200, testing::malformation::echo_request,
            testing::malformation::reset_mid_body, testing::malformation::close_before_headers};
        for (auto m : all) {
            s.auth.malform_next(-1, m); // every attempt, so that retries cannot hide the error path
            token_source fresh(s.io.executor(), setup::creds(s.auth), setup::options());
            diagnostics d;
            auto [ec, t] = test::run(s.io.executor(), fresh.async_get_token(d, asio::as_tuple(asio::use_awaitable)));
            CHECK(ec);
            keep(ec, d);
            keep(ec, fresh.last_diagnostics());
            std::ostringstream os;
            const auto st = fresh.stats();
            os << st.token_requests << ' ' << st.token_failures << ' ' << st.served << ' ' << t;
            printed.push_back(os.str());
        }
        s.check_no_secret();
    }
    {
        auto c = setup::creds(testing::fake_auth_server{setup::auth_options()});
        c.token_url = "http://auth.example.com/token"; // refused: plain http to a remote host
        test::io_threads io(1);
        try {
            token_source refused(io.executor(), c);
            FAIL("a plain-http token URL on a remote host was accepted");
        } catch (const boost::system::system_error& e) {
            CHECK(e.code() == errc::insecure_transport);
            printed.push_back(e.what());
        }
        std::ostringstream os;
        os << c << ' ' << c.client_secret;
        printed.push_back(os.str());
    }
    // every path above was taken: 8 malformations x (2 x 4 texts + the stats line), the
    // constructor's exception and the credentials' operator<<
    CHECK(printed.size() == 8 * 9 + 2);
    for (const auto& p : printed) CHECK_MESSAGE(p.find(the_secret) == std::string::npos, p);
}
