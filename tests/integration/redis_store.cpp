// The shared token store's Redis operations against a real redis-server: the record sealed at
// rest, the lease taken once and released only by its holder, a slow holder never overwriting
// its successor, announcements reaching a subscriber.
#include "fleet/redis_store.hpp"

#include "redis_server.hpp"
#include "support.hpp"

#include <boost/asio/ssl/context.hpp>

#include <doctest/doctest.h>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using fleet::redis_store;

namespace {

// Key material of 16 bytes or more, as the store wants.
constexpr std::string_view material = "sixteen bytes and more of key material";

credentials creds() {
    credentials c;
    c.token_url = "https://auth.example/token";
    c.client_id = "svc-a";
    c.client_secret = secret("CLIENT-SECRET-store");
    c.scope = "read";
    return c;
}

redis::endpoint at(const test::redis_server& server) {
    auto e = redis::parse_redis_url(server.url());
    REQUIRE(e.has_value());
    return *e;
}

fleet::shared_token token(const std::string& value, std::chrono::seconds lifetime = 3600s) {
    fleet::shared_token t;
    t.id = fleet::token_id(value);
    t.value = secret(value);
    t.type = "Bearer";
    t.expires_at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() + lifetime);
    return t;
}

// A raw command on a connection of its own, for what the store does not expose.
redis::reply raw(test::io_threads& io, const test::redis_server& server, std::vector<std::string> args) {
    redis::connection c(io.executor(), at(server), {.timeout = 2s});
    redis::pipeline p;
    std::vector<std::string_view> views(args.begin(), args.end());
    p.add(views);
    auto r = test::run(io.executor(), [&]() -> asio::awaitable<boost::system::result<std::vector<redis::reply>>> {
        if (auto ec = co_await c.connect()) co_return ec;
        co_return co_await c.exec(p);
    }());
    REQUIRE(r.has_value());
    return r->front();
}

template <class T>
T ok(boost::system::result<T> r) {
    REQUIRE_MESSAGE(r.has_value(), r.error().message());
    return std::move(*r);
}

} // namespace

TEST_CASE("a published token reads back in every process, sealed at rest, expiring with the token") {
    test::redis_server server;
    test::io_threads io;
    redis_store a(io.executor(), at(server), creds(), "CLIENT-SECRET-store", {.timeout = 2s});
    redis_store b(io.executor(), at(server), creds(), "CLIENT-SECRET-store", {.timeout = 2s});
    CHECK_FALSE(ok(test::run(io.executor(), b.read())).token.has_value());

    CHECK(ok(test::run(io.executor(), a.acquire("process-a"))));
    CHECK(ok(test::run(io.executor(), a.publish(token("tok-shared-0123456789"), "process-a"))));
    const auto seen = ok(test::run(io.executor(), b.read()));
    REQUIRE(seen.token.has_value());
    CHECK(seen.token->value.reveal() == "tok-shared-0123456789");
    CHECK(seen.token->id == fleet::token_id("tok-shared-0123456789"));

    // What Redis holds shows nothing of the token, and expires when the token does.
    const auto stored = raw(io, server, {"GET", a.keys().record});
    CHECK(stored.text.find("tok-shared") == std::string::npos);
    const auto ttl = raw(io, server, {"PTTL", a.keys().record}).integer;
    CHECK(ttl > 3500 * 1000);
    CHECK(ttl <= 3600 * 1000);
    // The lease ended with the publication.
    CHECK(raw(io, server, {"EXISTS", a.keys().lease}).integer == 0);
}

TEST_CASE("the lease: one holder at a time, released only by its holder, expiring by itself") {
    test::redis_server server;
    test::io_threads io;
    redis_store a(io.executor(), at(server), creds(), material, {.timeout = 2s, .lease = 60s});
    redis_store b(io.executor(), at(server), creds(), material, {.timeout = 2s, .lease = 60s});
    CHECK(ok(test::run(io.executor(), a.acquire("process-a"))));
    CHECK_FALSE(ok(test::run(io.executor(), b.acquire("process-b"))));
    CHECK_FALSE(ok(test::run(io.executor(), b.release("process-b")))); // not b's: left alone
    CHECK(raw(io, server, {"GET", a.keys().lease}).text == "process-a");
    const auto ttl = raw(io, server, {"PTTL", a.keys().lease}).integer;
    CHECK(ttl > 50'000);
    CHECK(ttl <= 60'000);
    CHECK(ok(test::run(io.executor(), a.release("process-a"))));
    CHECK(ok(test::run(io.executor(), b.acquire("process-b"))));
}

TEST_CASE("a slow holder whose lease passed on never overwrites its successor's token") {
    test::redis_server server;
    test::io_threads io;
    redis_store slow(io.executor(), at(server), creds(), material, {.timeout = 2s});
    redis_store next(io.executor(), at(server), creds(), material, {.timeout = 2s});
    CHECK(ok(test::run(io.executor(), slow.acquire("slow"))));
    // The slow holder's lease runs out; the next process takes it and publishes.
    raw(io, server, {"DEL", slow.keys().lease});
    CHECK(ok(test::run(io.executor(), next.acquire("next"))));
    CHECK(ok(test::run(io.executor(), next.publish(token("tok-newer-aaaaaaaaaa"), "next"))));
    // A third process holds the lease now; the slow one comes back with its older token.
    CHECK(ok(test::run(io.executor(), next.acquire("third"))));
    CHECK_FALSE(ok(test::run(io.executor(), slow.publish(token("tok-older-bbbbbbbbbb"), "slow"))));
    const auto seen = ok(test::run(io.executor(), next.read()));
    REQUIRE(seen.token.has_value());
    CHECK(seen.token->value.reveal() == "tok-newer-aaaaaaaaaa");
    CHECK(raw(io, server, {"GET", slow.keys().lease}).text == "third");
    // With nobody's lease, a late holder shares what it fetched only if it outlives what is
    // there: an older token (expiring sooner) is refused, a later one written.
    raw(io, server, {"DEL", slow.keys().lease});
    CHECK_FALSE(ok(test::run(io.executor(), slow.publish(token("tok-late-cccccccccc", 1800s), "slow"))));
    CHECK(ok(test::run(io.executor(), next.read())).token->value.reveal() == "tok-newer-aaaaaaaaaa");
    CHECK(ok(test::run(io.executor(), slow.publish(token("tok-later-dddddddddd", 7200s), "slow"))));
    CHECK(ok(test::run(io.executor(), next.read())).token->value.reveal() == "tok-later-dddddddddd");
}

TEST_CASE("a record under another key, or garbage, is reported unreadable and then overwritten") {
    test::redis_server server;
    test::io_threads io;
    redis_store other_key(io.executor(), at(server), creds(), "another secret, 16 bytes or more", {.timeout = 2s});
    redis_store mine(io.executor(), at(server), creds(), "CLIENT-SECRET-store", {.timeout = 2s});
    CHECK(ok(test::run(io.executor(), other_key.publish(token("tok-other-key-000000"), "x"))));
    auto seen = ok(test::run(io.executor(), mine.read()));
    CHECK_FALSE(seen.token.has_value());
    CHECK(seen.unreadable);
    raw(io, server, {"SET", mine.keys().record, "not a record at all"});
    seen = ok(test::run(io.executor(), mine.read()));
    CHECK(seen.unreadable);
    CHECK(ok(test::run(io.executor(), mine.publish(token("tok-mine-1111111111"), "m"))));
    seen = ok(test::run(io.executor(), mine.read()));
    REQUIRE(seen.token.has_value());
    CHECK(seen.token->value.reveal() == "tok-mine-1111111111");
}

TEST_CASE("a subscriber hears the announcement of a publication, and its deadline otherwise") {
    test::redis_server server;
    test::io_threads io;
    redis_store waiter(io.executor(), at(server), creds(), material, {.timeout = 2s});
    redis_store holder(io.executor(), at(server), creds(), material, {.timeout = 2s});
    auto sub = ok(test::run(io.executor(), waiter.subscribe()));
    CHECK(ok(test::run(io.executor(), holder.publish(token("tok-announced-222222"), "h"))));
    const auto heard = ok(test::run(io.executor(), sub->next(std::chrono::steady_clock::now() + 10s)));
    REQUIRE(heard.has_value());
    CHECK(*heard == fleet::token_id("tok-announced-222222"));

    auto quiet = ok(test::run(io.executor(), waiter.subscribe()));
    const auto nothing = ok(test::run(io.executor(), quiet->next(std::chrono::steady_clock::now() + 200ms)));
    CHECK_FALSE(nothing.has_value());
}

TEST_CASE("Redis away: calls fail at once during the backoff, and the store rejoins when Redis is back") {
    test::redis_server server;
    test::io_threads io;
    // A backoff no test run outlasts, so that the count is exact; and a short one, to rejoin.
    redis_store patient(io.executor(), at(server), creds(), material, {.timeout = 2s, .backoff = 60s, .max_backoff = 60s});
    redis_store eager(io.executor(), at(server), creds(), material, {.timeout = 2s, .backoff = 50ms, .max_backoff = 100ms});
    CHECK(ok(test::run(io.executor(), patient.acquire("p"))));
    CHECK(ok(test::run(io.executor(), eager.read())).token == std::nullopt);
    CHECK(patient.connect_attempts() == 1);

    server.stop();
    CHECK_FALSE(test::run(io.executor(), patient.read()).has_value()); // the open connection fails
    for (int i = 0; i < 20; ++i) CHECK_FALSE(test::run(io.executor(), patient.read()).has_value());
    CHECK(patient.connect_attempts() == 2); // one reconnection, refused; the backoff answers the rest
    CHECK_FALSE(test::run(io.executor(), eager.read()).has_value());

    server.start();
    CHECK(test::eventually([&] { return test::run(io.executor(), eager.read()).has_value(); }, 10s));
    // Back, and empty: Redis was restarted without persistence.
    CHECK_FALSE(ok(test::run(io.executor(), eager.read())).token.has_value());
    CHECK_FALSE(test::run(io.executor(), patient.read()).has_value()); // still backing off
    CHECK(patient.connect_attempts() == 2);
}

TEST_CASE("the store refuses key material under 16 bytes and a prefix that would break the hash tag") {
    test::io_threads io;
    const auto where = *redis::parse_redis_url("redis://127.0.0.1:1");
    CHECK_THROWS_AS(redis_store(io.executor(), where, creds(), "short", {}), boost::system::system_error);
    CHECK_THROWS_AS(redis_store(io.executor(), where, creds(), "", {}), boost::system::system_error);
    CHECK_THROWS_AS(redis_store(io.executor(), where, creds(), material, {.prefix = "tf{x}:"}),
                    boost::system::system_error);
    CHECK_NOTHROW(redis_store(io.executor(), where, creds(), material, {}));
}

TEST_CASE("rediss://: publish and subscribe over TLS, the subscription on its own connection") {
    test::tls_redis_server tls_server;
    const auto& server = tls_server.server;
    const auto& ca = tls_server.ca;
    test::io_threads io;
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->add_certificate_authority(asio::buffer(ca.cert_pem)); // verify_none here: the connection verifies anyway
    redis_store waiter(io.executor(), at(server), creds(), material, {.timeout = 5s, .tls = tls});
    redis_store holder(io.executor(), at(server), creds(), material, {.timeout = 5s, .tls = tls});
    auto sub = ok(test::run(io.executor(), waiter.subscribe()));
    CHECK(ok(test::run(io.executor(), holder.publish(token("tok-over-tls-3333333"), "h"))));
    const auto heard = ok(test::run(io.executor(), sub->next(std::chrono::steady_clock::now() + 10s)));
    REQUIRE(heard.has_value());
    CHECK(*heard == fleet::token_id("tok-over-tls-3333333"));
    CHECK(ok(test::run(io.executor(), waiter.read())).token->value.reveal() == "tok-over-tls-3333333");

    // A context that trusts another CA: refused, though the context itself verifies nothing.
    const auto other = test::make_cert("another CA", "", nullptr);
    auto wrong = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    wrong->add_certificate_authority(asio::buffer(other.cert_pem));
    redis_store refused(io.executor(), at(server), creds(), material, {.timeout = 5s, .tls = wrong});
    CHECK_FALSE(test::run(io.executor(), refused.read()).has_value());
}
