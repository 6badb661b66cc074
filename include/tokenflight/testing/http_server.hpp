#ifndef TOKENFLIGHT_TESTING_HTTP_SERVER_HPP
#define TOKENFLIGHT_TESTING_HTTP_SERVER_HPP

#include <tokenflight/http/message.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

/// @file
/// A small in-process HTTP/1.1 and HTTP/2 (and HTTPS) server on 127.0.0.1 for tests, benchmarks and demos.

namespace boost::asio::ssl {
class context;
}

/// In-process fake servers on 127.0.0.1 for tests, benchmarks and demos (CMake target
/// `tokenflight::testing`).
namespace tokenflight::testing {

/// What the server does with a request after the handler ran.
///
/// Over HTTP/2 (http_server::options::http2) each reply acts on the request's stream, or on the
/// connection where it says so.
enum class reply {
    /// Send the response; keep the connection open if the request allows. HTTP/2: HEADERS then
    /// DATA, connection-specific fields dropped, `content-length` set.
    send,
    /// Send the response with `Connection: close`, then close. HTTP/2: the response with a
    /// GOAWAY(NO_ERROR) naming the highest stream seen (sent after its HEADERS, before its DATA,
    /// where HTTP/1.1's `Connection: close` would be), then close once the response is out.
    send_and_close,
    /// Close the connection without answering (before any header byte). HTTP/2: GOAWAY(NO_ERROR)
    /// whose last stream id is below this stream (the client may resend it), then close.
    close,
    /// Reset the connection (RST) without answering. HTTP/2: RST_STREAM(INTERNAL_ERROR) on this
    /// stream only.
    reset,
    /// Send the header and half the body, then reset (HTTP/2: RST_STREAM(INTERNAL_ERROR)).
    reset_mid_body,
    /// Never answer; the connection stays open until the server stops. HTTP/2: this stream
    /// only; the connection's other streams go on.
    stall,
};

/// An HTTP/1.1 (and, with options::http2, HTTP/2) server on 127.0.0.1 with an ephemeral port,
/// running on threads of its own.
///
/// The handler is a coroutine run for every request; it fills in the response (it may wait, for
/// latency) and says what to do with it. HTTP/1.1: keep-alive, pipelining-free, one request at a
/// time per connection. HTTP/2: every stream of a connection runs the handler concurrently (on
/// the connection's strand). Counts connections so that tests can prove pooling.
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
        /// Also serve HTTP/2 (RFC 9113) on the same port. With `tls`: the server installs an ALPN
        /// callback in that context (SSL_CTX_set_alpn_select_cb, so the context then negotiates
        /// for every server using it) that picks "h2" when the client offers it, else
        /// "http/1.1", and a connection that negotiated "h2" is served as HTTP/2. Without TLS:
        /// a connection that starts with the HTTP/2 client preface is served as HTTP/2 (h2c with
        /// prior knowledge; no `Upgrade: h2c`). Every other connection is HTTP/1.1 as before.
        /// HTTP/2 requests reach the handler with version() 20, their :authority as a Host
        /// field; a body over body_limit resets the stream (RST_STREAM(CANCEL)); idle_close does
        /// not apply to HTTP/2 connections.
        bool http2 = false;
        /// HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS the server announces (and enforces, refusing
        /// streams beyond it).
        std::uint32_t http2_max_concurrent_streams = 100;
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
    /// Requests read since the start (counted before the handler runs); every HTTP/2 stream
    /// is one request.
    std::uint64_t requests() const noexcept;
    /// Connections served as HTTP/2 since the start (also counted by connections_accepted()).
    std::uint64_t http2_connections() const noexcept;
    /// Closes every idle keep-alive connection now, and each busy one right after its response
    /// (the next request a client sends on one of them fails). HTTP/2: GOAWAY(NO_ERROR) naming the
    /// highest stream seen, then close once no stream is waiting for its handler or sending its
    /// response (stalled streams do not count).
    void close_idle_connections();
    /// Stops accepting and closes everything (HTTP/2 connections too, stalled streams or not);
    /// called by the destructor.
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace tokenflight::testing

#endif
