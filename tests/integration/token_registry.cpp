#include <tokenflight/token_registry.hpp>

#include "support.hpp"

#include <tokenflight/testing/fake_auth_server.hpp>

#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <future>
#include <map>
#include <string>

using namespace tokenflight;
using namespace std::chrono_literals;

namespace {
credentials base_for(const testing::fake_auth_server& s) {
    credentials c = s.client_credentials();
    c.scope = "ignored";
    return c;
}
} // namespace

TEST_CASE("one credential, several APIs: one source per scope and audience set") {
    testing::fake_auth_server server;
    test::io_threads io(2);
    token_registry registry(io.executor(), base_for(server));

    auto& orders = registry.source("orders:read orders:write", {{"audience", "https://orders.example/"}});
    auto& same = registry.source("orders:write  orders:read", {{"audience", "https://orders.example/"}});
    auto& billing = registry.source("billing:read", {{"audience", "https://billing.example/"}});
    auto& orders_other_audience = registry.source("orders:read orders:write", {{"audience", "https://other.example/"}});
    CHECK(&orders == &same); // scope words compared as a set
    CHECK(&orders != &billing);
    CHECK(&orders != &orders_other_audience);
    CHECK(registry.size() == 3);

    auto t1 = orders.async_get_token(boost::asio::use_future);
    auto t2 = same.async_get_token(boost::asio::use_future);
    auto t3 = billing.async_get_token(boost::asio::use_future);
    REQUIRE(t1.wait_for(10s) == std::future_status::ready);
    REQUIRE(t2.wait_for(10s) == std::future_status::ready);
    REQUIRE(t3.wait_for(10s) == std::future_status::ready);
    const auto a = t1.get(), b = t2.get(), c = t3.get();
    CHECK(a.value() == b.value());
    CHECK(a.value() != c.value());
    CHECK(a.scope() == "orders:read orders:write");
    CHECK(c.scope() == "billing:read");
    CHECK(server.token_requests() == 2); // one per distinct set, not per caller
    // each set's own scope and audience reached the token endpoint
    std::map<std::string, std::string> audience_by_scope;
    for (const auto& form : server.request_forms()) {
        REQUIRE(form.contains("scope"));
        REQUIRE(form.contains("audience"));
        audience_by_scope[form.at("scope")] = form.at("audience");
    }
    const std::map<std::string, std::string> expected{{"orders:read orders:write", "https://orders.example/"},
                                                      {"billing:read", "https://billing.example/"}};
    CHECK(audience_by_scope == expected);

    registry.close();
    std::promise<error_code> after;
    orders.async_get_token([&](error_code ec, access_token) { after.set_value(ec); });
    auto f = after.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == errc::closed);
}

TEST_CASE("a registry with a bad base configuration throws on every use and stays usable") {
    test::io_threads io(1);
    credentials bad;
    bad.token_url = "http://auth.example.com/token"; // plain http to a remote host
    bad.client_id = "id";
    bad.client_secret = secret("s");
    token_registry registry(io.executor(), bad);
    const auto code_of = [&](std::string scope) {
        try {
            registry.source(scope);
        } catch (const boost::system::system_error& e) {
            return e.code();
        }
        return error_code{};
    };
    CHECK(code_of("read") == errc::insecure_transport);
    CHECK(registry.size() == 0); // no half-made source left behind
    // Used again after the throw, from another thread: the same error, no deadlock on a lock the
    // throw left held, still nothing created; and it closes.
    auto again = std::async(std::launch::async, [&] { return code_of("read"); });
    REQUIRE(again.wait_for(10s) == std::future_status::ready);
    CHECK(again.get() == errc::insecure_transport);
    CHECK(code_of("write") == errc::insecure_transport);
    CHECK(registry.size() == 0);
    registry.close();
    CHECK(code_of("read") != error_code{});
}
