#include <tokenflight/testing/http_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
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

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
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

// ALPN (RFC 7301) for options::http2 over TLS: "h2" when the client offers it, else "http/1.1";
// no overlap: no ALPN, and HTTP/1.1 on the connection.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
    static constexpr unsigned char ours[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// One request stream of an HTTP/2 connection.
struct h2_stream {
    enum class phase { receiving, handling, responding, stalled };
    phase state = phase::receiving;
    http::request req;
    std::size_t header_bytes = 0;
    bool rejected = false; // reset by us (a limit): its END_STREAM starts no handler
    std::string body;      // the response's, read by the data provider
    std::size_t sent = 0;
    std::size_t send_limit = 0; // reset_mid_body: half the body, then RST_STREAM
    bool reset_at_limit = false;
};

// One HTTP/2 connection: nghttp2's server session and what its callbacks recorded. Lives on the
// connection's strand; the reader, the writer and the stream handlers share it there. The
// callbacks only record: nothing calls mem_recv or mem_send from inside one.
struct h2_connection {
    static constexpr std::size_t max_header_list = 64 * 1024;

    const http_server::options* opts = nullptr;
    std::string peer_certificate;
    nghttp2_session* session = nullptr;
    std::map<std::int32_t, std::unique_ptr<h2_stream>> streams;
    std::vector<std::int32_t> ready; // complete requests, for their handlers
    std::int32_t highest = 0;        // the highest stream id the client opened
    asio::steady_timer wake_timer;
    bool woken = false;
    bool reader_done = false;
    bool ended = false;          // the connection is over: late handlers answer nothing
    bool drain = false;          // close_idle_connections: GOAWAY, close when no stream is busy
    std::int32_t close_after = 0; // send_and_close: GOAWAY once this stream's response is out
    std::optional<std::int32_t> abandon_from; // reply::close: GOAWAY naming the streams below, close
    bool goaway_sent = false;

    explicit h2_connection(asio::any_io_executor strand)
        : wake_timer(std::move(strand), asio::steady_timer::time_point::max()) {}
    ~h2_connection() { nghttp2_session_del(session); }
    h2_connection(const h2_connection&) = delete;
    h2_connection& operator=(const h2_connection&) = delete;

    void wake() {
        woken = true;
        wake_timer.cancel();
    }

    h2_stream* find(std::int32_t id) {
        auto it = streams.find(id);
        return it == streams.end() ? nullptr : it->second.get();
    }

    bool busy() const {
        return std::any_of(streams.begin(), streams.end(), [](const auto& s) {
            return s.second->state == h2_stream::phase::handling || s.second->state == h2_stream::phase::responding;
        });
    }

    static h2_connection& self(void* user) { return *static_cast<h2_connection*>(user); }

    static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
        auto& c = self(user);
        auto st = std::make_unique<h2_stream>();
        st->req.version(20);
        c.streams[frame->hd.stream_id] = std::move(st);
        c.highest = std::max(c.highest, frame->hd.stream_id);
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                         const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
        // Trailers (a later HEADERS frame) are dropped.
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
        auto* st = self(user).find(frame->hd.stream_id);
        if (!st) return 0;
        // nghttp2 announces but never enforces a header list limit: a server has to count.
        st->header_bytes += namelen + valuelen + 32;
        if (st->header_bytes > max_header_list) {
            st->rejected = true;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; // resets this stream only
        }
        const std::string_view n(reinterpret_cast<const char*>(name), namelen);
        const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
        // nghttp2 has checked the pseudo-headers (present, once, before the others).
        if (n == ":method")
            st->req.method_string(v);
        else if (n == ":path")
            st->req.target(v);
        else if (n == ":authority")
            st->req.set(http::field::host, v);
        else if (!n.empty() && n.front() != ':')
            st->req.insert(n, v);
        return 0;
    }

    static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                             std::size_t len, void* user) {
        auto& c = self(user);
        auto* st = c.find(id);
        if (!st || st->rejected) return 0;
        auto& body = st->req.body();
        if (len > c.opts->body_limit - std::min(body.size(), c.opts->body_limit)) {
            st->rejected = true;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
            return 0;
        }
        body.append(reinterpret_cast<const char*>(data), len);
        return 0;
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            return 0;
        auto& c = self(user);
        auto* st = c.find(frame->hd.stream_id);
        if (st && !st->rejected && st->state == h2_stream::phase::receiving) c.ready.push_back(frame->hd.stream_id);
        return 0;
    }

    static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
        // A handler still running finds its stream gone, and answers nothing.
        self(user).streams.erase(id);
        return 0;
    }

    static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                             std::uint32_t* flags, nghttp2_data_source* source, void*) {
        auto* st = static_cast<h2_stream*>(source->ptr);
        if (st->sent == st->send_limit && st->reset_at_limit)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; // RST_STREAM(INTERNAL_ERROR)
        const std::size_t n = std::min(length, st->send_limit - st->sent);
        std::memcpy(buf, st->body.data() + st->sent, n);
        st->sent += n;
        if (st->sent == st->send_limit && !st->reset_at_limit) *flags |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
    }

    void start(std::uint32_t max_concurrent_streams) {
        nghttp2_session_callbacks* cbs = nullptr;
        if (nghttp2_session_callbacks_new(&cbs) != 0) throw std::bad_alloc();
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
        const int rc = nghttp2_session_server_new2(&session, cbs, this, nullptr);
        nghttp2_session_callbacks_del(cbs);
        if (rc != 0) throw std::bad_alloc();
        const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent_streams}};
        nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    }

    // After the handler: what `action` says, on stream `id`.
    void answer(std::int32_t id, reply action, http::response& res, bool head) {
        auto* st = find(id);
        if (ended || !st) return; // the client reset the stream, or the connection is gone
        switch (action) {
        case reply::stall: st->state = h2_stream::phase::stalled; return;
        case reply::close:
            // Client stream ids are odd: the one before this one. The client learns that this
            // stream (and any later one) was never processed.
            abandon_from = id;
            break;
        case reply::reset:
            st->state = h2_stream::phase::stalled; // nothing more to send
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
            break;
        case reply::send:
        case reply::reset_mid_body: submit_response(id, *st, res, head, action == reply::reset_mid_body); break;
        case reply::send_and_close:
            submit_response(id, *st, res, head, false);
            // Queued behind the response's HEADERS, ahead of its DATA, as HTTP/1.1's
            // `Connection: close` travels in the header: a client that stops reading once its
            // last response ends (nghttp does) still sees it. The writer closes once the
            // response is out.
            nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, highest, NGHTTP2_NO_ERROR, nullptr, 0);
            goaway_sent = true;
            close_after = id;
            break;
        }
        wake();
    }

    void submit_response(std::int32_t id, h2_stream& st, http::response& res, bool head, bool mid_body) {
        std::vector<std::pair<std::string, std::string>> fields;
        fields.emplace_back(":status", std::to_string(res.result_int()));
        for (const auto& f : res) {
            std::string name(f.name_string());
            std::transform(name.begin(), name.end(), name.begin(),
                           [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
            // RFC 9113 section 8.2.2: no connection-specific fields; content-length is ours.
            if (name == "connection" || name == "keep-alive" || name == "transfer-encoding" || name == "upgrade" ||
                name == "proxy-connection" || name == "content-length")
                continue;
            fields.emplace_back(std::move(name), std::string(f.value()));
        }
        fields.emplace_back("content-length", std::to_string(res.body().size()));
        std::vector<nghttp2_nv> nva;
        for (auto& [n, v] : fields)
            nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()), reinterpret_cast<std::uint8_t*>(v.data()),
                           n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
        st.body = std::move(res.body());
        st.send_limit = head ? 0 : mid_body ? st.body.size() / 2 : st.body.size();
        st.reset_at_limit = mid_body;
        st.state = h2_stream::phase::responding;
        nghttp2_data_provider provider{};
        provider.source.ptr = &st;
        provider.read_callback = &read_body;
        const bool data = mid_body || st.send_limit > 0;
        // `fields` outlives the call: nghttp2 copies the names and values.
        if (nghttp2_submit_response(session, id, nva.data(), nva.size(), data ? &provider : nullptr) != 0)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    }
};

struct session_state {
    tcp::socket* socket = nullptr;
    asio::any_io_executor strand;
    bool idle = true;
    bool close_requested = false; // close once the response in progress is written
    std::weak_ptr<h2_connection> h2; // set while the connection is served as HTTP/2
};

struct http_server::impl {
    handler_type handler;
    options opts;
    std::atomic<std::uint64_t> accepted{0}, open{0}, max_open{0}, requests{0}, http2{0};
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
                                std::string peer_certificate = {}, beast::flat_buffer buffer = {}) {
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

    // HTTP/2 on one connection: a reader feeding nghttp2, a writer flushing it, and a handler
    // coroutine per request stream, all on the connection's strand. Returns once both the
    // reader and the writer have finished, so `stream` outlives every use of it.
    template <class Stream>
    asio::awaitable<void> serve_h2(Stream& stream, beast::tcp_stream& transport, std::shared_ptr<session_state> state,
                                   std::string peer_certificate, std::string first_bytes) {
        using namespace asio::experimental::awaitable_operators;
        http2.fetch_add(1, std::memory_order_relaxed);
        state->idle = false; // close_idle_connections goes through the connection's own GOAWAY
        auto conn = std::make_shared<h2_connection>(co_await asio::this_coro::executor);
        conn->opts = &opts;
        conn->peer_certificate = std::move(peer_certificate);
        conn->start(opts.http2_max_concurrent_streams);
        state->h2 = conn;
        co_await (h2_reader(stream, conn, std::move(first_bytes)) && h2_writer(stream, transport, conn));
        conn->ended = true;
        state->h2.reset();
    }

    template <class Stream>
    asio::awaitable<void> h2_reader(Stream& stream, std::shared_ptr<h2_connection> conn, std::string first_bytes) {
        std::vector<char> buf(16 * 1024);
        std::string_view bytes = first_bytes;
        for (;;) {
            if (!bytes.empty()) {
                const auto n = nghttp2_session_mem_recv(conn->session, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                        bytes.size());
                if (n < 0) break; // fatal; whatever nghttp2 queued (GOAWAY) the writer still sends
                start_handlers(conn);
                conn->wake();
            }
            if (conn->ended || nghttp2_session_want_read(conn->session) == 0) break;
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), tuple_awaitable);
            if (ec || conn->ended) break;
            bytes = std::string_view(buf.data(), n);
        }
        conn->reader_done = true;
        conn->wake();
    }

    void start_handlers(const std::shared_ptr<h2_connection>& conn) {
        for (const auto id : std::exchange(conn->ready, {})) {
            auto* st = conn->find(id);
            if (!st || st->rejected) continue;
            st->state = h2_stream::phase::handling;
            requests.fetch_add(1, std::memory_order_relaxed);
            http::request req = std::move(st->req);
            if (!opts.peer_certificate_header.empty()) {
                req.erase(opts.peer_certificate_header);
                if (!conn->peer_certificate.empty()) req.set(opts.peer_certificate_header, conn->peer_certificate);
            }
            asio::co_spawn(conn->wake_timer.get_executor(), h2_handle(conn, id, std::move(req)), asio::detached);
        }
    }

    asio::awaitable<void> h2_handle(std::shared_ptr<h2_connection> conn, std::int32_t id, http::request req) {
        http::response res{http::status::ok, 20};
        const reply action = co_await handler(req, res);
        conn->answer(id, action, res, req.method() == http::verb::head);
    }

    template <class Stream>
    asio::awaitable<void> h2_writer(Stream& stream, beast::tcp_stream& transport, std::shared_ptr<h2_connection> conn) {
        bool close_now = false;
        for (;;) {
            // A drain's GOAWAY may have gone already: a later one can only lower the last stream
            // id (nghttp2 sends the lower of the two), which is what reply::close needs.
            if (!close_now) {
                std::optional<std::int32_t> last;
                if (conn->abandon_from) {
                    last = std::max(0, *conn->abandon_from - 2);
                    close_now = true;
                } else if (conn->close_after && !conn->find(conn->close_after)) {
                    close_now = true; // its response is out; its GOAWAY went with it
                } else if (conn->drain && !conn->goaway_sent) {
                    last = conn->highest;
                }
                if (last) {
                    nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE, *last, NGHTTP2_NO_ERROR, nullptr, 0);
                    conn->goaway_sent = true;
                }
            }
            if (conn->drain && conn->goaway_sent && !conn->busy()) close_now = true;

            std::string out;
            for (;;) {
                const std::uint8_t* data = nullptr;
                const auto n = nghttp2_session_mem_send(conn->session, &data);
                if (n <= 0) {
                    if (n < 0) close_now = true;
                    break;
                }
                out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
            }
            if (!out.empty()) {
                auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), tuple_awaitable);
                if (ec) break;
                continue; // sending may have closed streams, or let nghttp2 queue more
            }
            if (close_now || conn->reader_done ||
                (nghttp2_session_want_read(conn->session) == 0 && nghttp2_session_want_write(conn->session) == 0))
                break;
            if (!conn->woken) co_await conn->wake_timer.async_wait(tuple_awaitable);
            conn->woken = false;
        }
        // Ends the reader too, if it still waits for bytes.
        conn->ended = true;
        error_code ec;
        transport.socket().shutdown(tcp::socket::shutdown_both, ec);
        transport.socket().close(ec);
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
                auto peer = thumbprint_of(SSL_get0_peer_certificate(tls.native_handle()));
                const unsigned char* alpn = nullptr;
                unsigned int alpn_len = 0;
                SSL_get0_alpn_selected(tls.native_handle(), &alpn, &alpn_len);
                if (opts.http2 && std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) == "h2") {
                    auto op = serve_h2(tls, transport, state, std::move(peer), {});
                    co_await std::move(op);
                } else {
                    auto op = serve(tls, transport, *state, std::move(peer));
                    co_await std::move(op);
                }
            }
        } else if (opts.http2) {
            // Prior knowledge (RFC 9113 section 3.3): the first 24 bytes say which protocol. Read
            // until they match the preface or stop matching it; HTTP/1.1 gets them in its buffer.
            beast::flat_buffer buffer;
            bool h2 = false;
            for (;;) {
                const std::string_view got(static_cast<const char*>(buffer.data().data()), buffer.size());
                if (got.size() >= h2_preface.size()) {
                    h2 = got.substr(0, h2_preface.size()) == h2_preface;
                    break;
                }
                if (h2_preface.substr(0, got.size()) != got) break;
                if (opts.idle_close.count() > 0) transport.expires_after(opts.idle_close);
                auto [ec, n] = co_await transport.async_read_some(buffer.prepare(1024), tuple_awaitable);
                if (ec) break; // HTTP/1.1's read reports it (and sees the bytes already there)
                buffer.commit(n);
            }
            transport.expires_never();
            if (h2) {
                const std::string first(static_cast<const char*>(buffer.data().data()), buffer.size());
                auto op = serve_h2(transport, transport, state, {}, first);
                co_await std::move(op);
            } else {
                auto op = serve(transport, transport, *state, {}, std::move(buffer));
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
    if (opts.http2 && opts.tls) SSL_CTX_set_alpn_select_cb(opts.tls->native_handle(), &select_alpn, nullptr);
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
std::uint64_t http_server::http2_connections() const noexcept { return impl_->http2.load(); }

void http_server::close_idle_connections() {
    std::lock_guard lock(impl_->sessions_mutex);
    for (auto& entry : impl_->sessions) {
        const auto& state = entry.second; // (a structured binding: clang 14 cannot capture one)
        asio::post(state->strand, [state] {
            state->close_requested = true; // a busy session closes after its response
            if (auto h2 = state->h2.lock()) {
                h2->drain = true;
                h2->wake();
                return;
            }
            if (!state->socket || !state->idle) return;
            error_code ec;
            state->socket->shutdown(tcp::socket::shutdown_both, ec);
            state->socket->close(ec);
        });
    }
}

} // namespace tokenflight::testing
