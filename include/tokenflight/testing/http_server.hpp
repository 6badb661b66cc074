#ifndef TOKENFLIGHT_TESTING_HTTP_SERVER_HPP
#define TOKENFLIGHT_TESTING_HTTP_SERVER_HPP

#include <tokenflight/http/message.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

/// @file
/// A small in-process HTTP/1.1 (and HTTPS) server on 127.0.0.1 for tests, benchmarks and demos.

namespace boost::asio::ssl {
class context;
}

/// In-process fake servers on 127.0.0.1 for tests, benchmarks and demos (CMake target
/// `tokenflight::testing`).
namespace tokenflight::testing {

/// What the server does with a request after the handler ran.
enum class reply {
    send,              ///< send the response; keep the connection open if the request allows
    send_and_close,    ///< send the response with `Connection: close`, then close
    close,             ///< close the connection without answering (before any header byte)
    reset,             ///< reset the connection (RST) without answering
    reset_mid_body,    ///< send the header and half the body, then reset
    stall,             ///< never answer; the connection stays open until the server stops
};

/// An HTTP/1.1 server on 127.0.0.1 with an ephemeral port, running on threads of its own.
///
/// The handler is a coroutine run for every request; it fills in the response (it may wait, for
/// latency) and says what to do with it. Keep-alive, pipelining-free, one request at a time per
/// connection. Counts connections so that tests can prove pooling.
///
/// Thread safety: all member functions are thread-safe. The handler runs on the server's threads.
class http_server {
public:
    /// Called for every request with the request and a 200 response to fill in.
    using handler_type =
        std::function<boost::asio::awaitable<reply>(const http::request&, http::response&)>;

    /// How the server runs; the defaults suit most tests.
    struct options {
        int threads = 1; ///< threads running the server's own io_context
        /// Serve HTTPS with this context (owned by the caller, must outlive the server).
        boost::asio::ssl::context* tls = nullptr;
        /// Close connections idle for this long (0: never).
        std::chrono::milliseconds idle_close{0};
        /// The largest request body read; a larger one ends the connection.
        std::size_t body_limit = 1024 * 1024;
        /// With TLS: the name of a request header the server sets, before the handler sees the
        /// request, to the RFC 8705 thumbprint (base64url SHA-256 of the DER) of the client
        /// certificate of the request's connection, as a TLS-terminating proxy forwards it; a
        /// header of that name sent by the client is removed. Empty (default): nothing done.
        /// Ask for client certificates in the context (verify_peer).
        std::string peer_certificate_header{};
    };

    /// Starts listening and serving at once; port() is known when the constructor returns.
    http_server(handler_type handler, options opts);
    /// With default options().
    explicit http_server(handler_type handler);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// The port the server listens on.
    std::uint16_t port() const noexcept;
    /// "http://127.0.0.1:PORT" (or https)
    std::string base_url() const;

    /// Connections accepted since the start.
    std::uint64_t connections_accepted() const noexcept;
    /// Connections open now.
    std::uint64_t open_connections() const noexcept;
    /// The most connections that were open at one time.
    std::uint64_t max_open_connections() const noexcept;
    /// Requests read since the start (counted before the handler runs).
    std::uint64_t requests() const noexcept;
    /// Closes every idle keep-alive connection now, and each busy one right after its response
    /// (the next request a client sends on one of them fails).
    void close_idle_connections();
    /// Stops accepting and closes everything; called by the destructor.
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace tokenflight::testing

#endif
