// HTTP/2 peers for tests (issue 19): nghttp2's own server session scripted per test, in memory
// (`peer`) or on a 127.0.0.1 socket (`h2_server`, cleartext h2c), and raw frames for what no
// well-behaved server sends.
#ifndef TOKENFLIGHT_TESTS_H2_PEER_HPP
#define TOKENFLIGHT_TESTS_H2_PEER_HPP

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace test::h2 {

/// A frame: header (length, type, flags, stream id; RFC 9113 section 4.1) and payload.
inline std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, const std::string& payload) {
    std::string f;
    const auto len = payload.size();
    f += static_cast<char>(len >> 16);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len);
    f += static_cast<char>(type);
    f += static_cast<char>(flags);
    for (int shift = 24; shift >= 0; shift -= 8) f += static_cast<char>((stream >> shift) & (shift == 24 ? 0x7F : 0xFF));
    return f + payload;
}

/// nghttp2's server session, in memory, answering as `on_request` says.
class peer {
public:
    struct received {
        std::vector<std::pair<std::string, std::string>> headers; // pseudo-headers included
        std::string body;
        std::string header(const std::string& name) const {
            for (const auto& [n, v] : headers)
                if (n == name) return v;
            return "<none>";
        }
    };
    /// Called once a request is complete (END_STREAM).
    std::function<void(peer&, std::int32_t, const received&)> on_request;
    std::map<std::int32_t, received> requests;
    std::vector<std::pair<std::int32_t, std::uint32_t>> resets; ///< RST_STREAMs received: stream, code

    struct settings {
        std::uint32_t max_streams = 100;
        bool window_updates = true; ///< false: never sends WINDOW_UPDATE (the client's body stalls)
    };

    peer() : peer(settings{}) {}
    explicit peer(settings s) {
        nghttp2_session_callbacks* cbs = nullptr;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_on_header_callback(
            cbs, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl, const std::uint8_t* v,
                    std::size_t vl, std::uint8_t, void* u) {
                static_cast<peer*>(u)->requests[f->hd.stream_id].headers.emplace_back(
                    std::string(reinterpret_cast<const char*>(n), nl), std::string(reinterpret_cast<const char*>(v), vl));
                return 0;
            });
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
            cbs, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t len, void* u) {
                static_cast<peer*>(u)->requests[id].body.append(reinterpret_cast<const char*>(d), len);
                return 0;
            });
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
            auto& self = *static_cast<peer*>(u);
            if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
                self.on_request)
                self.on_request(self, f->hd.stream_id, self.requests[f->hd.stream_id]);
            if (f->hd.type == NGHTTP2_RST_STREAM) self.resets.emplace_back(f->hd.stream_id, f->rst_stream.error_code);
            return 0;
        });
        nghttp2_option* opt = nullptr;
        nghttp2_option_new(&opt);
        if (!s.window_updates) nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_session_server_new2(&session_, cbs, this, opt);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cbs);
        const nghttp2_settings_entry e{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s.max_streams};
        nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &e, 1);
    }
    ~peer() { nghttp2_session_del(session_); }
    peer(const peer&) = delete;
    peer& operator=(const peer&) = delete;

    /// Answers stream `id`; `end` false: the body's END_STREAM never comes (a response that never ends).
    void respond(std::int32_t id, unsigned status, std::vector<std::pair<std::string, std::string>> headers,
                 std::string body, bool end = true) {
        auto& b = bodies_[id];
        b.data = std::move(body);
        b.end = end;
        // Named: nghttp2 copies the fields during the submit call, so they must outlive only it
        // (a temporary std::string here would be gone before it).
        const std::string status_name = ":status", code = std::to_string(status);
        std::vector<nghttp2_nv> nva{make(status_name, code)};
        for (const auto& [n, v] : headers) nva.push_back(make(n, v));
        nghttp2_data_provider p{};
        p.source.ptr = &b;
        p.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len, std::uint32_t* flags,
                             nghttp2_data_source* src, void*) -> ssize_t {
            auto& body = *static_cast<pending*>(src->ptr);
            const auto n = std::min(len, body.data.size() - body.sent);
            std::memcpy(buf, body.data.data() + body.sent, n);
            body.sent += n;
            if (body.sent == body.data.size()) {
                if (!body.end) return n > 0 ? static_cast<ssize_t>(n) : static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED);
                *flags |= NGHTTP2_DATA_FLAG_EOF;
            }
            return static_cast<ssize_t>(n);
        };
        nghttp2_submit_response(session_, id, nva.data(), nva.size(), &p);
    }
    /// A 1xx response (103 Early Hints) before the final one.
    void interim(std::int32_t id) {
        const std::string status = ":status", code = "103", name = "x-interim", value = "yes";
        nghttp2_nv nva[] = {make(status, code), make(name, value)};
        nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nva, 2, nullptr);
    }
    void reset(std::int32_t id, std::uint32_t code) { nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code); }
    void goaway(std::int32_t last_id) { nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_id, NGHTTP2_NO_ERROR, nullptr, 0); }

    /// Feeds the client's bytes; false when nghttp2 refuses them.
    bool receive(const std::string& bytes) {
        return nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) ==
               static_cast<ssize_t>(bytes.size());
    }
    /// What is to be sent to the client now.
    std::string output() {
        std::string out;
        for (;;) {
            const std::uint8_t* d = nullptr;
            const auto n = nghttp2_session_mem_send(session_, &d);
            if (n <= 0) return out;
            out.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
        }
    }
    /// Neither side wants more (after a GOAWAY both ways, or an error).
    bool finished() const { return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0; }

private:
    struct pending {
        std::string data;
        std::size_t sent = 0;
        bool end = true;
    };
    static nghttp2_nv make(const std::string& n, const std::string& v) {
        return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_session* session_ = nullptr;
    std::map<std::int32_t, pending> bodies_;
};

/// A cleartext HTTP/2 server (prior knowledge) on 127.0.0.1 with an ephemeral port: one thread
/// per connection, each with a `peer` scripted by `on_request` (called with the peer locked), or
/// a raw script that is handed the socket instead. Counts connections, requests and the most
/// requests it held unanswered at once. Stops (closing every connection) on destruction.
class h2_server {
public:
    using script = std::function<void(peer&, std::int32_t, const peer::received&)>;
    /// Runs a connection by hand: the socket, blocking; returns when done (the socket is closed then).
    using raw_script = std::function<void(boost::asio::ip::tcp::socket&)>;

    explicit h2_server(script on_request, peer::settings s = {}) : on_request_(std::move(on_request)), settings_(s) { listen(); }
    explicit h2_server(raw_script raw) : raw_(std::move(raw)) { listen(); }
    ~h2_server() { stop(); }

    std::uint16_t port() const { return port_; }
    std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
    int connections() const { return connections_.load(); }
    int requests() const { return requests_.load(); }
    /// RST_STREAM frames received from the client, over all connections.
    int resets() const { return resets_.load(); }

    /// Lets a script close its connection after the current output: set from on_request.
    static void close_after_output(peer& p) { closing_.insert(&p); }

    void stop() {
        if (stopped_.exchange(true)) return;
        boost::system::error_code ec;
        {
            // A blocking accept() is not woken by a close from another thread: a connection is.
            boost::asio::ip::tcp::socket wake(ioc_);
            wake.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
        }
        if (accept_thread_.joinable()) accept_thread_.join();
        acceptor_.close(ec);
        {
            std::lock_guard lock(mutex_);
            for (auto* s : sockets_) s->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        }
        for (auto& t : threads_) t.join();
    }

private:
    void listen() {
        acceptor_.open(boost::asio::ip::tcp::v4());
        acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
        acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accept_thread_ = std::thread([this] {
            for (;;) {
                auto s = std::make_shared<boost::asio::ip::tcp::socket>(ioc_);
                boost::system::error_code ec;
                acceptor_.accept(*s, ec);
                if (ec || stopped_) return;
                ++connections_;
                std::lock_guard lock(mutex_);
                sockets_.push_back(s.get());
                threads_.emplace_back([this, s] { serve(*s); });
            }
        });
    }

    void serve(boost::asio::ip::tcp::socket& s) {
        boost::system::error_code ec;
        if (raw_) {
            raw_(s);
        } else {
            peer p(settings_);
            p.on_request = [this](peer& self, std::int32_t id, const peer::received& r) {
                ++requests_;
                on_request_(self, id, r);
            };
            std::array<char, 16384> buf{};
            std::size_t seen_resets = 0;
            for (;;) {
                const auto out = p.output();
                if (!out.empty()) boost::asio::write(s, boost::asio::buffer(out), ec);
                if (ec || closing_.erase(&p) != 0 || p.finished()) break;
                const auto n = s.read_some(boost::asio::buffer(buf), ec);
                if (ec || !p.receive(std::string(buf.data(), n))) break;
                resets_ += static_cast<int>(p.resets.size() - seen_resets);
                seen_resets = p.resets.size();
            }
        }
        s.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        std::lock_guard lock(mutex_);
        sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), &s), sockets_.end());
        s.close(ec);
    }

    script on_request_;
    peer::settings settings_;
    raw_script raw_;
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_{ioc_};
    std::uint16_t port_ = 0;
    std::thread accept_thread_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::vector<boost::asio::ip::tcp::socket*> sockets_;
    std::atomic<bool> stopped_{false};
    std::atomic<int> connections_{0}, requests_{0}, resets_{0};
    static inline thread_local std::set<peer*> closing_;
};

} // namespace test::h2

#endif
