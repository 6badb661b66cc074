#include "redis/connection.hpp"
#include "redis/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
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
    if (ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
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
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    // The resolver has no deadline of its own: a timer cancels the lookup when it is due.
    tcp::resolver resolver(stream_.get_executor());
    asio::steady_timer lookup_deadline(stream_.get_executor(), deadline);
    lookup_deadline.async_wait([&resolver](const error_code& ec) {
        if (!ec) resolver.cancel();
    });
    auto [rec, endpoints] = co_await resolver.async_resolve(where_.host, where_.port, as_result);
    const bool late = lookup_deadline.cancel() == 0; // the timer had fired
    if (rec) co_return late ? error_code(errc::connect_timeout) : rec;
    stream_.expires_at(deadline);
    auto [cec, to] = co_await stream_.async_connect(endpoints, as_result);
    if (cec) {
        close();
        co_return named(cec, errc::connect_timeout);
    }
    stream_.socket().set_option(tcp::no_delay(true));
    if (where_.tls) {
        tls_ = std::make_unique<asio::ssl::stream<boost::beast::tcp_stream&>>(stream_, *options_.tls);
        boost::system::error_code bad_address;
        asio::ip::make_address(where_.host, bad_address);
        if (bad_address) // a name: sent as SNI (an address never is)
            SSL_set_tlsext_host_name(tls_->native_handle(), where_.host.c_str());
        if (SSL_CTX_get_verify_mode(options_.tls->native_handle()) & SSL_VERIFY_PEER)
            tls_->set_verify_callback(asio::ssl::host_name_verification(where_.host));
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
