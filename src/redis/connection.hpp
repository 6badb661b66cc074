// One connection to a Redis server, for tokenflight's shared token store: TCP on tokenflight's
// Asio executor (no thread of its own, nothing blocking), logged in (AUTH, SELECT) when it
// connects, commands sent as pipelines, every step under one deadline.
#ifndef TOKENFLIGHT_REDIS_CONNECTION_HPP
#define TOKENFLIGHT_REDIS_CONNECTION_HPP

#include "redis/resp.hpp"
#include "redis/url.hpp"

#include <tokenflight/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace tokenflight::redis {

struct connection_options {
    /// Each pipeline (the login's too): the store's calls must fail fast, so that requests fall
    /// back to the local single flight.
    std::chrono::milliseconds timeout{50};
    /// The name lookup, the TCP connection and the TLS handshake together; unset: `timeout`.
    std::optional<std::chrono::milliseconds> connect_timeout{};
    std::size_t max_reply_bytes = 1024 * 1024;
    /// For rediss://: the TLS client context (trust, client certificate). The connection adds
    /// SNI and, when the context verifies peers, the host name or address check. Unset:
    /// rediss:// fails with redis_errc::tls_unsupported.
    std::shared_ptr<boost::asio::ssl::context> tls{};
    /// rediss://: verify the server's chain (against the context's trust) and its name or
    /// address, whatever the context's own verify mode. Off only for tests of the unverified.
    bool verify_peer = true;
};

/// A pipeline: commands appended one after the other, sent in one write. Its bytes may hold a
/// password (AUTH): wiped when it is destroyed.
class pipeline {
public:
    pipeline() = default;
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;
    ~pipeline();

    pipeline& add(const std::vector<std::string_view>& args) {
        append_command(bytes_, args);
        ++count_;
        return *this;
    }
    const std::string& bytes() const noexcept { return bytes_; }
    std::size_t size() const noexcept { return count_; }

private:
    std::string bytes_;
    std::size_t count_ = 0;
};

/// Not thread-safe: one coroutine at a time uses a connection (the store keeps one per use).
/// After any error the connection is closed; connect() again (the store backs off first).
/// Neither copied nor moved: its TLS stream refers to its TCP stream.
class connection {
public:
    connection(boost::asio::any_io_executor ex, endpoint where, connection_options options = {});
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Resolves, connects and logs in: AUTH [user] password when the endpoint has a password,
    /// SELECT when its database is not 0: the lookup and the connection within the timeout, the
    /// login within another. Errors: the transport's, errc::connect_timeout,
    /// redis_errc::auth_refused, redis_errc::select_refused, errc::malformed_response; for
    /// rediss://, the TLS handshake's (the handshake within the connection's deadline) and
    /// redis_errc::tls_unsupported without connection_options::tls.
    boost::asio::awaitable<error_code> connect();

    /// Sends `p` and reads one reply per command (a Redis error is a reply, not a failure).
    /// Errors: errc::request_timeout, errc::connection_closed, errc::malformed_response,
    /// errc::body_too_large; the connection is then closed.
    boost::asio::awaitable<boost::system::result<std::vector<reply>>> exec(const pipeline& p);

    /// Reads the next reply the server sends unasked (a pub/sub message), waiting until
    /// `deadline`. On errc::request_timeout (nothing came) the connection is closed like after
    /// any error: a subscription is made per wait.
    boost::asio::awaitable<boost::system::result<reply>> next_pushed(std::chrono::steady_clock::time_point deadline);

    bool is_open() const noexcept;
    void close() noexcept;

private:
    boost::asio::awaitable<boost::system::result<reply>> read_reply();

    boost::asio::awaitable<std::tuple<error_code, std::size_t>> read_some(boost::asio::mutable_buffer b);
    boost::asio::awaitable<std::tuple<error_code, std::size_t>> write_all(boost::asio::const_buffer b);

    boost::beast::tcp_stream stream_;
    /// Over stream_, for rediss://; null for redis://.
    std::unique_ptr<boost::asio::ssl::stream<boost::beast::tcp_stream&>> tls_;
    endpoint where_;
    connection_options options_;
    std::unique_ptr<reply_reader> reader_; ///< new with every connection
};

} // namespace tokenflight::redis

#endif
