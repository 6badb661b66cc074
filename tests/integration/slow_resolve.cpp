// A DNS server that does not answer in time, without any DNS: this test executable defines its
// own getaddrinfo (symbols of the executable take precedence over libc's), which stalls for names
// under .slow.invalid and forwards every other name to the real one. Its own executable, so that
// no other test sees the stand-in.
#include <tokenflight/http/connection_pool.hpp>

#include "support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dlfcn.h>
#include <netdb.h>

#include <chrono>
#include <string_view>
#include <thread>

using namespace tokenflight;
using namespace std::chrono_literals;
namespace asio = boost::asio;

// How long a lookup of a .slow.invalid name blocks: far longer than the timeouts below, so a
// request that waited for the resolver would end with host_not_found instead of a timeout.
constexpr auto stall = 2s;

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
    using real_fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
    static const auto real = reinterpret_cast<real_fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
    if (node && std::string_view(node).ends_with(".slow.invalid")) {
        std::this_thread::sleep_for(stall);
        return EAI_NONAME;
    }
    return real(node, service, hints, res);
}

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

error_code get(http::connection_pool& pool, test::io_threads& io, http::send_options so = {},
               std::chrono::milliseconds cancel_after = 0ms) {
    return test::run(io.executor(), [&]() -> asio::awaitable<error_code> {
        http::origin to{.tls = false, .host = "api.slow.invalid", .port = 80};
        http::request req{http::verb::get, "/", 11};
        if (cancel_after == 0ms) {
            auto [ec, res] = co_await pool.async_send(to, std::move(req), so, tuple_awaitable);
            co_return ec;
        }
        asio::cancellation_signal sig;
        const auto ex = co_await asio::this_coro::executor; // own statement: GCC 12 (design notes)
        asio::steady_timer timer(ex, cancel_after);
        timer.async_wait([&](error_code) { sig.emit(asio::cancellation_type::terminal); });
        auto [ec, res] = co_await pool.async_send(to, std::move(req), so,
                                                  asio::bind_cancellation_slot(sig.slot(), tuple_awaitable));
        co_return ec;
    }());
}
} // namespace

TEST_CASE("a resolve that hangs ends at connect_timeout, the request deadline, or a cancellation") {
    test::io_threads io(2);
    http::pool_options o;
    o.connect_timeout = 200ms;
    http::connection_pool pool(io.executor(), o);
    // The stand-in forwards other names: localhost resolves (and is refused on port 1). First:
    // Asio has one resolver thread per io_context, so lookups queue behind a stalled one.
    auto refused = test::run(io.executor(), [&]() -> asio::awaitable<error_code> {
        http::origin to{.tls = false, .host = "localhost", .port = 1}; // named: no braced temporary inside a co_await (GCC 12)
        http::request req{http::verb::get, "/", 11};
        auto [ec, res] = co_await pool.async_send(to, std::move(req), tuple_awaitable);
        co_return ec;
    }());
    CHECK(refused == asio::error::connection_refused);

    CHECK(get(pool, io) == errc::connect_timeout);

    http::send_options short_request;
    short_request.timeout = 100ms; // shorter than connect_timeout: the request's own deadline wins
    CHECK(get(pool, io, short_request) == errc::request_timeout);

    http::pool_options patient;
    patient.connect_timeout = 60s;
    http::connection_pool slow_pool(io.executor(), patient);
    CHECK(get(slow_pool, io, {}, 100ms) == asio::error::operation_aborted);

}
