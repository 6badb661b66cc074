#include "redis/connection.hpp"
#include "redis/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>

namespace tokenflight::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "tokenflight.redis"; }
    std::string message(int ev) const override {
        switch (static_cast<redis_errc>(ev)) {
        case redis_errc::auth_refused: return "Redis refused the login (AUTH): wrong user or password";
        case redis_errc::select_refused: return "Redis refused the database (SELECT)";
        case redis_errc::tls_unsupported: return "rediss:// needs a TLS context";
        }
        return "unknown Redis error";
    }
};

constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

// The transport's error, named as tokenflight names it.
error_code named(const error_code& ec, errc on_timeout) {
    if (ec == boost::beast::error::timeout) return on_timeout;
    if (ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == asio::ssl::error::stream_truncated)
        return errc::connection_closed;
    return ec;
}

} // namespace

const boost::system::error_category& redis_category() noexcept {
    static const category c;
    return c;
}

connection::connection(asio::any_io_executor ex, endpoint where, connection_options options)
    : stream_(std::move(ex)), where_(std::move(where)), options_(options),
      reader_(std::make_unique<reply_reader>(options.max_reply_bytes)) {}

pipeline::~pipeline() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

bool connection::is_open() const noexcept { return stream_.socket().is_open(); }

void connection::close() noexcept {
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    tls_.reset();
    reader_ = std::make_unique<reply_reader>(options_.max_reply_bytes);
}

asio::awaitable<error_code> connection::connect() {
    close();
    if (where_.tls && !options_.tls) co_return redis_errc::tls_unsupported;
    const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout.value_or(options_.timeout);
    // Asio resolves with a blocking getaddrinfo on a thread of its own, which cancel() cannot
    // interrupt (the connection pool does the same): the lookup completes into state it shares,
    // and this waits on a timer that the lookup or the deadline ends. A lookup left behind
    // finishes on its own and frees that state.
    struct lookup {
        lookup(const asio::any_io_executor& ex, std::chrono::steady_clock::time_point until)
            : resolver(ex), done(ex, until) {}
        tcp::resolver resolver;
        asio::steady_timer done;
        error_code ec;
        tcp::resolver::results_type endpoints;
        bool finished = false;
    };
    auto l = std::make_shared<lookup>(stream_.get_executor(), deadline);
    l->resolver.async_resolve(where_.host, where_.port, [l](error_code ec, tcp::resolver::results_type r) {
        l->ec = ec;
        l->endpoints = std::move(r);
        l->finished = true;
        l->done.cancel();
    });
    co_await l->done.async_wait(as_result);
    if (!l->finished) {
        l->resolver.cancel();
        co_return errc::connect_timeout;
    }
    if (l->ec) co_return l->ec;
    stream_.expires_at(deadline);
    auto [cec, to] = co_await stream_.async_connect(l->endpoints, as_result);
    if (cec) {
        close();
        co_return named(cec, errc::connect_timeout);
    }
    boost::system::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    if (where_.tls) {
        tls_ = std::make_unique<asio::ssl::stream<boost::beast::tcp_stream&>>(stream_, *options_.tls);
        SSL* ssl = tls_->native_handle();
        // RFC 6066 section 3: an IP literal is never a server name.
        boost::system::error_code not_ip;
        (void)asio::ip::make_address(where_.host, not_ip);
        if (not_ip && !SSL_set_tlsext_host_name(ssl, where_.host.c_str())) {
            close();
            co_return errc::tls_verification_failed;
        }
        // Verified whatever the context says: the login's password goes over this connection.
        if (options_.verify_peer) {
            SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
            const bool set = not_ip ? SSL_set1_host(ssl, where_.host.c_str()) == 1
                                    : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), where_.host.c_str()) == 1;
            if (!set) {
                close();
                co_return errc::tls_verification_failed;
            }
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, as_result);
        if (hec) {
            close();
            co_return named(hec, errc::connect_timeout);
        }
    }
    pipeline login;
    if (!where_.password.empty()) {
        if (where_.user.empty())
            login.add({"AUTH", where_.password.reveal()});
        else
            login.add({"AUTH", where_.user, where_.password.reveal()});
    }
    const std::string db = std::to_string(where_.database);
    if (where_.database != 0) login.add({"SELECT", db});
    if (login.size() == 0) co_return error_code{};
    auto replies = co_await exec(login);
    if (!replies) co_return replies.error();
    for (std::size_t i = 0; i < replies->size(); ++i)
        if ((*replies)[i].is_error()) {
            close();
            // The server's text is not passed on: it is the server's, and names the user.
            co_return !where_.password.empty() && i == 0 ? redis_errc::auth_refused : redis_errc::select_refused;
        }
    co_return error_code{};
}

asio::awaitable<std::tuple<error_code, std::size_t>> connection::read_some(asio::mutable_buffer b) {
    if (tls_) co_return co_await tls_->async_read_some(b, as_result);
    co_return co_await stream_.async_read_some(b, as_result);
}

asio::awaitable<std::tuple<error_code, std::size_t>> connection::write_all(asio::const_buffer b) {
    if (tls_) co_return co_await asio::async_write(*tls_, b, as_result);
    co_return co_await asio::async_write(stream_, b, as_result);
}

asio::awaitable<boost::system::result<reply>> connection::read_reply() {
    for (;;) {
        auto next = reader_->next();
        if (!next) co_return next.error();
        if (*next) co_return std::move(**next);
        char chunk[16 * 1024];
        auto [ec, n] = co_await read_some(asio::buffer(chunk));
        if (ec) co_return named(ec, errc::request_timeout);
        if (auto fed = reader_->feed(std::string_view(chunk, n))) co_return fed;
    }
}

asio::awaitable<boost::system::result<std::vector<reply>>> connection::exec(const pipeline& p) {
    if (!is_open()) co_return error_code(errc::connection_closed);
    // Bytes left from before (a reply nobody asked for) would be taken for this pipeline's.
    if (reader_->buffered()) {
        close();
        co_return error_code(errc::malformed_response);
    }
    stream_.expires_after(options_.timeout);
    auto [wec, written] = co_await write_all(asio::buffer(p.bytes()));
    if (wec) {
        close();
        co_return named(wec, errc::request_timeout);
    }
    std::vector<reply> replies;
    replies.reserve(p.size());
    while (replies.size() < p.size()) {
        auto r = co_await read_reply();
        if (!r) {
            close();
            co_return r.error();
        }
        replies.push_back(std::move(*r));
    }
    stream_.expires_never();
    co_return replies;
}

asio::awaitable<boost::system::result<reply>> connection::next_pushed(std::chrono::steady_clock::time_point deadline) {
    if (!is_open()) co_return error_code(errc::connection_closed);
    stream_.expires_at(deadline);
    auto r = co_await read_reply();
    if (!r) {
        close();
        co_return r.error();
    }
    stream_.expires_never();
    co_return r;
}

} // namespace tokenflight::redis
