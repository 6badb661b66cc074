#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <tokenflight/http/client_identity.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tokenflight::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// Closes with a TCP reset (RST) rather than a FIN: lingering on, with a zero timeout.
void reset_connection(tcp::socket& socket) {
    error_code ec;
    socket.set_option(tcp::socket::linger(/*enabled=*/true, /*timeout=*/0), ec);
    socket.close(ec);
}

// RFC 8705's x5t#S256 of a peer certificate; empty for none.
std::string thumbprint_of(X509* cert) {
    if (!cert) return {};
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    if (n <= 0) return {};
    auto thumbprint =
        http::certificate_thumbprint(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
    OPENSSL_free(der);
    return thumbprint;
}

struct session_state {
    tcp::socket* socket = nullptr;
    asio::any_io_executor strand;
    bool idle = true;
    bool close_requested = false; // close once the response in progress is written
};

struct http_server::impl {
    handler_type handler;
    options opts;
    std::atomic<std::uint64_t> accepted{0}, open{0}, max_open{0}, requests{0};
    std::mutex sessions_mutex;
    std::unordered_map<std::uint64_t, std::shared_ptr<session_state>> sessions;
    std::uint64_t next_session = 0;
    std::uint16_t port = 0;
    bool stopped = false;
    // Declared last so that coroutine frames destroyed with the io_context still see the above.
    std::optional<asio::io_context> ioc;
    std::optional<tcp::acceptor> acceptor;
    std::vector<std::thread> threads;

    template <class Stream>
    asio::awaitable<void> serve(Stream& stream, beast::tcp_stream& transport, session_state& state,
                                std::string peer_certificate = {}) {
        beast::flat_buffer buffer;
        for (;;) {
            state.idle = true;
            beast::http::request_parser<beast::http::string_body> parser;
            parser.body_limit(opts.body_limit);
            if (opts.idle_close.count() > 0) transport.expires_after(opts.idle_close);
            auto [read_ec, bytes_read] = co_await beast::http::async_read(stream, buffer, parser, tuple_awaitable);
            if (read_ec) co_return;
            transport.expires_never();
            state.idle = false;
            requests.fetch_add(1, std::memory_order_relaxed);
            http::request req = parser.release();
            if (!opts.peer_certificate_header.empty()) {
                req.erase(opts.peer_certificate_header);
                if (!peer_certificate.empty()) req.set(opts.peer_certificate_header, peer_certificate);
            }
            http::response res{http::status::ok, req.version()};
            res.keep_alive(req.keep_alive());
            const reply action = co_await handler(req, res);
            error_code ec;
            switch (action) {
            case reply::close: transport.socket().shutdown(tcp::socket::shutdown_both, ec); co_return;
            case reply::reset:
                reset_connection(transport.socket());
                co_return;
            case reply::stall: {
                asio::steady_timer forever(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
                co_await forever.async_wait(tuple_awaitable);
                co_return;
            }
            case reply::reset_mid_body: {
                res.prepare_payload();
                beast::http::response_serializer<beast::http::string_body> serializer(res);
                auto [header_ec, header_bytes] = co_await beast::http::async_write_header(stream, serializer, tuple_awaitable);
                if (header_ec) co_return;
                const auto half = res.body().substr(0, res.body().size() / 2);
                co_await asio::async_write(stream, asio::buffer(half), tuple_awaitable); // then reset, whatever happened
                reset_connection(transport.socket());
                co_return;
            }
            case reply::send_and_close: res.keep_alive(false); [[fallthrough]];
            case reply::send: {
                res.prepare_payload();
                auto [write_ec, bytes_written] = co_await beast::http::async_write(stream, res, tuple_awaitable);
                if (write_ec || !res.keep_alive() || state.close_requested) {
                    transport.socket().shutdown(tcp::socket::shutdown_send, ec);
                    co_return;
                }
            }
            }
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        const auto now_open = open.fetch_add(1) + 1;
        for (auto m = max_open.load(); now_open > m && !max_open.compare_exchange_weak(m, now_open);) {
        }
        struct decrement {
            std::atomic<std::uint64_t>& n;
            ~decrement() { n.fetch_sub(1); }
        } guard{open};

        auto state = std::make_shared<session_state>();
        state->strand = co_await asio::this_coro::executor;
        std::uint64_t id;
        beast::tcp_stream transport(std::move(socket));
        state->socket = &transport.socket();
        {
            std::lock_guard lock(sessions_mutex);
            id = next_session++;
            sessions.emplace(id, state);
        }
        if (opts.tls) {
            asio::ssl::stream<beast::tcp_stream&> tls(transport, *opts.tls);
            auto [handshake_ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, tuple_awaitable);
            if (!handshake_ec) {
                auto op = serve(tls, transport, *state, thumbprint_of(SSL_get0_peer_certificate(tls.native_handle())));
                co_await std::move(op);
            }
        } else {
            auto op = serve(transport, transport, *state);
            co_await std::move(op);
        }
        state->socket = nullptr; // on the strand, so close_idle_connections never sees a dead socket
        std::lock_guard lock(sessions_mutex);
        sessions.erase(id);
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto strand = asio::make_strand(*ioc);
            auto [ec, socket] = co_await acceptor->async_accept(strand, tuple_awaitable);
            if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
            if (ec) continue; // e.g. too many open files: keep serving the others
            accepted.fetch_add(1, std::memory_order_relaxed);
            socket.set_option(tcp::no_delay(true));
            asio::co_spawn(strand, session(std::move(socket)), asio::detached);
        }
    }
};

http_server::http_server(handler_type handler) : http_server(std::move(handler), options{}) {}

http_server::http_server(handler_type handler, options opts) : impl_(std::make_shared<impl>()) {
    impl_->handler = std::move(handler);
    impl_->opts = opts;
    impl_->ioc.emplace(opts.threads);
    impl_->acceptor.emplace(*impl_->ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    impl_->acceptor->listen(asio::socket_base::max_listen_connections);
    impl_->port = impl_->acceptor->local_endpoint().port();
    asio::co_spawn(*impl_->ioc, impl_->accept_loop(), asio::detached);
    for (int i = 0; i < std::max(1, opts.threads); ++i) impl_->threads.emplace_back([this] { impl_->ioc->run(); });
}

http_server::~http_server() { stop(); }

void http_server::stop() {
    {
        std::lock_guard lock(impl_->sessions_mutex);
        if (impl_->stopped) return;
        impl_->stopped = true;
    }
    impl_->ioc->stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
    impl_->acceptor.reset();
    {
        // Their strands must go before the io_context does.
        std::lock_guard lock(impl_->sessions_mutex);
        impl_->sessions.clear();
    }
    impl_->ioc.reset(); // destroys the sessions' coroutine frames
}

std::uint16_t http_server::port() const noexcept { return impl_->port; }
std::string http_server::base_url() const {
    return std::string(impl_->opts.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(impl_->port);
}
std::uint64_t http_server::connections_accepted() const noexcept { return impl_->accepted.load(); }
std::uint64_t http_server::open_connections() const noexcept { return impl_->open.load(); }
std::uint64_t http_server::max_open_connections() const noexcept { return impl_->max_open.load(); }
std::uint64_t http_server::requests() const noexcept { return impl_->requests.load(); }

void http_server::close_idle_connections() {
    std::lock_guard lock(impl_->sessions_mutex);
    for (auto& [id, state] : impl_->sessions) {
        asio::post(state->strand, [state] {
            state->close_requested = true; // a busy session closes after its response
            if (!state->socket || !state->idle) return;
            error_code ec;
            state->socket->shutdown(tcp::socket::shutdown_both, ec);
            state->socket->close(ec);
        });
    }
}

} // namespace tokenflight::testing
