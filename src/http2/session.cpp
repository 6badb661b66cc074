#include "http2/session.hpp"

#include <tokenflight/http/header_syntax.hpp>

#include <boost/asio/error.hpp>

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace tokenflight::http2 {

namespace {

class stream_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "tokenflight.http2"; }
    std::string message(int ev) const override {
        switch (static_cast<stream_errc>(ev)) {
        case stream_errc::refused: return "HTTP/2 stream refused: the server did not process it";
        case stream_errc::reset: return "HTTP/2 stream reset by the server";
        case stream_errc::header_list_too_large: return "HTTP/2 response header list exceeds the limit";
        case stream_errc::body_too_large: return "HTTP/2 response body exceeds the limit";
        case stream_errc::connection_error: return "HTTP/2 connection error";
        }
        return "tokenflight.http2: unknown " + std::to_string(ev);
    }
};

// Fields that mean something for one HTTP/1.1 connection only (RFC 9113 section 8.2.2): not
// sent over HTTP/2, as curl and Go's net/http drop them too. `host` becomes :authority.
bool connection_specific(std::string_view name, std::string_view value) {
    return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
           name == "transfer-encoding" || name == "upgrade" || name == "host" || (name == "te" && value != "trailers");
}


} // namespace

const boost::system::error_category& stream_category() noexcept {
    static const stream_category_impl c;
    return c;
}

struct client_session::stream {
    request owned;         // submit(request): what `body` points into
    std::string_view body; // the request body, sent from here
    std::size_t body_sent = 0;
    std::size_t body_limit = SIZE_MAX;
    bool keep_body = true;
    bool keep_fields = true;
    response res;
    std::size_t header_bytes = 0;
    bool interim = false; // in a 1xx header block: its fields are dropped
    bool cancelled = false;
    error_code own_error; // a limit passed: this is the stream's error, whatever the close says
};

// nghttp2's callbacks: they only record. No callback calls back into mem_recv or mem_send.
struct callbacks {
    static client_session& self(void* user) { return *static_cast<client_session*>(user); }
    static client_session::stream* find(client_session& s, std::int32_t id) {
        auto it = s.streams_.find(id);
        return it == s.streams_.end() ? nullptr : it->second.get();
    }

    static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        if (auto* st = find(self(user), frame->hd.stream_id)) st->interim = false;
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                         const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
        auto& s = self(user);
        auto* st = find(s, frame->hd.stream_id);
        if (!st || st->own_error) return 0;
        // RFC 9113 section 6.5.2's size: every block of the response counts (1xx, trailers too).
        st->header_bytes += namelen + valuelen + 32;
        if (st->header_bytes > s.limits_.max_header_list) {
            st->own_error = stream_errc::header_list_too_large;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; // resets this stream only
        }
        const std::string_view n(reinterpret_cast<const char*>(name), namelen);
        const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
        if (n == ":status") {
            // nghttp2 has checked it is three digits.
            const unsigned status = static_cast<unsigned>((v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0'));
            st->interim = status < 200;
            if (!st->interim) st->res.status = status;
        } else if (!st->interim && (n.empty() || n.front() != ':') &&
                   (st->keep_fields || n == "www-authenticate" || n == "retry-after" || n == "dpop-nonce")) {
            st->res.headers.emplace_back(n, v);
        }
        return 0;
    }

    static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                             std::size_t len, void* user) {
        auto& s = self(user);
        auto* st = find(s, id);
        if (!st || st->own_error) return 0;
        const std::uint64_t limit = std::min(s.limits_.max_body, st->body_limit);
        if (len > limit - std::min<std::uint64_t>(st->res.body_size, limit)) {
            st->own_error = stream_errc::body_too_large;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
            return 0;
        }
        st->res.body_size += len;
        if (st->keep_body) st->res.body.append(reinterpret_cast<const char*>(data), len);
        return 0;
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        auto& s = self(user);
        switch (frame->hd.type) {
        case NGHTTP2_GOAWAY:
            s.goaway_ = true;
            s.last_stream_id_ = frame->goaway.last_stream_id;
            break;
        case NGHTTP2_SETTINGS:
            if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) s.settings_ = true;
            break;
        case NGHTTP2_PING:
            if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) s.ping_outstanding_ = false;
            break;
        default: break;
        }
        return 0;
    }

    static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* user) {
        auto& s = self(user);
        auto* st = find(s, id);
        if (!st) return 0;
        error_code ec;
        if (st->cancelled)
            ec = boost::asio::error::operation_aborted;
        else if (st->own_error)
            ec = st->own_error;
        else if (code == NGHTTP2_REFUSED_STREAM || (s.goaway_ && id > s.last_stream_id_))
            ec = stream_errc::refused;
        else if (code != NGHTTP2_NO_ERROR || st->res.status == 0)
            ec = stream_errc::reset;
        s.finish(id, ec);
        return 0;
    }

    static ssize_t read(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                        nghttp2_data_source* source, void*) {
        auto* st = static_cast<client_session::stream*>(source->ptr);
        const std::size_t n = std::min(length, st->body.size() - st->body_sent);
        std::memcpy(buf, st->body.data() + st->body_sent, n);
        st->body_sent += n;
        if (st->body_sent == st->body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
    }
};

client_session::client_session(limits l) : limits_(l) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_option* opt = nullptr;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) throw std::bad_alloc();
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &callbacks::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &callbacks::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &callbacks::on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &callbacks::on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &callbacks::on_stream_close);
    nghttp2_option_set_max_continuations(opt, limits_.max_continuations);
    // Windows are ours to manage only in the sense of their size: nghttp2 sends WINDOW_UPDATE as
    // the application consumes data, which it does at once (on_data_chunk).
    const int rc = nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0) throw std::bad_alloc();
    const std::array<nghttp2_settings_entry, 4> settings{{
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(limits_.stream_window)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(limits_.max_header_list)},
    }};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, limits_.connection_window);
}

client_session::~client_session() { nghttp2_session_del(session_); }

bool client_session::can_submit() const {
    if (failed_ || goaway_ || nghttp2_session_check_request_allowed(session_) == 0) return false;
    return streams_.size() < nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

boost::system::result<std::int32_t> client_session::submit(request req) {
    auto st = std::make_unique<stream>();
    st->owned = std::move(req);
    const auto& r = st->owned;
    std::vector<field_view> fields(r.headers.begin(), r.headers.end());
    request_view v{.method = r.method, .scheme = r.scheme, .authority = r.authority, .path = r.path,
                   .headers = fields, .body = r.body};
    return submit(v, std::move(st));
}

boost::system::result<std::int32_t> client_session::submit(const request_view& req) {
    return submit(req, std::make_unique<stream>());
}

boost::system::result<std::int32_t> client_session::submit(const request_view& req, std::unique_ptr<stream> st) {
    if (!http::is_token(req.method)) return error_code(errc::invalid_method);
    if (!http::is_request_target(req.path) || !http::is_visible_ascii(req.authority) ||
        (req.scheme != "https" && req.scheme != "http"))
        return error_code(errc::invalid_request_target);
    // The lower-cased names, one after another: reserved first, so that the views into it stay put.
    std::size_t names = 0;
    for (const auto& f : req.headers) names += f.first.size();
    scratch_.clear();
    scratch_.reserve(names);
    // The fields as nghttp2 takes them, reused (nghttp2_nv is an anonymous struct: no member).
    thread_local std::vector<nghttp2_nv> nva_;
    nva_.clear();
    const auto view = [](std::string_view n, std::string_view v) {
        return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                          reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                          NGHTTP2_NV_FLAG_NONE};
    };
    nva_.push_back(view(":method", req.method));
    nva_.push_back(view(":scheme", req.scheme));
    nva_.push_back(view(":authority", req.authority));
    nva_.push_back(view(":path", req.path));
    for (const auto& [name, value] : req.headers) {
        const std::size_t at = scratch_.size();
        for (char c : name) scratch_ += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        const std::string_view lower(scratch_.data() + at, name.size());
        // Lowered first, so the token rule leaves lower case only; ':' is no token character: no
        // pseudo-header.
        if (!http::is_token(lower)) return error_code(errc::invalid_header_name);
        if (!http::is_field_value(value)) return error_code(errc::invalid_header_value);
        if (connection_specific(lower, value)) continue;
        nva_.push_back(view(lower, value));
    }
    if (!can_submit()) return error_code(errc::closed);

    st->body = req.body;
    st->body_limit = req.body_limit;
    st->keep_body = req.keep_body;
    st->keep_fields = req.keep_fields;
    nghttp2_data_provider body{};
    body.source.ptr = st.get();
    body.read_callback = &callbacks::read;
    const std::int32_t id =
        nghttp2_submit_request(session_, nullptr, nva_.data(), nva_.size(), req.body.empty() ? nullptr : &body, nullptr);
    if (id < 0) return error_code(errc::closed);
    streams_.emplace(id, std::move(st));
    return id;
}

std::uint32_t client_session::peer_max_streams() const {
    return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

void client_session::ping() {
    if (failed_ || ping_outstanding_) return;
    if (nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr) == 0) ping_outstanding_ = true;
}

void client_session::shutdown() {
    if (!failed_) nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
}

void client_session::cancel(std::int32_t stream_id) {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    it->second->cancelled = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
}

error_code client_session::receive(std::string_view bytes) {
    if (failed_) return stream_errc::connection_error;
    // RFC 9113 section 3.4: the server's first frame is SETTINGS on stream 0. Checked here, on
    // the first 9 bytes: an HTTP/1.1 server's "HTTP/1.1 400" would otherwise read as the header
    // of a frame of an unknown type, and leave the session waiting for 4.7 MB.
    if (preface_.size() < 9) {
        const auto take = std::min<std::size_t>(9 - preface_.size(), bytes.size());
        preface_.append(bytes.substr(0, take));
        if (preface_.size() == 9 && (preface_[3] != NGHTTP2_SETTINGS || preface_[5] != 0 || preface_[6] != 0 ||
                                     preface_[7] != 0 || preface_[8] != 0)) {
            failed_ = true;
            fail_all(stream_errc::connection_error);
            return stream_errc::connection_error;
        }
    }
    const auto n = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    // A fatal error, or one nghttp2 answers with GOAWAY (a malformed frame, a flood): the
    // session reads no more, and the streams still open will never complete.
    if (n < 0 || nghttp2_session_want_read(session_) == 0) {
        const bool any = !streams_.empty();
        failed_ = true;
        fail_all(stream_errc::connection_error);
        if (n < 0 || any) return stream_errc::connection_error;
    }
    return {};
}

void client_session::take_output(std::string& out) {
    while (!failed_) {
        const std::uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
            failed_ = true;
            fail_all(stream_errc::connection_error);
            return;
        }
        if (n == 0) return;
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
}

std::vector<completed> client_session::take_completed() { return std::exchange(completed_, {}); }

bool client_session::finished() const {
    return failed_ || (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
}

void client_session::finish(std::int32_t id, error_code ec) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    completed c;
    c.stream_id = id;
    c.error = ec;
    if (!ec) c.res = std::move(it->second->res);
    completed_.push_back(std::move(c));
    streams_.erase(it);
}

void client_session::fail_all(error_code ec) {
    std::vector<std::int32_t> ids;
    for (const auto& [id, st] : streams_) ids.push_back(id);
    for (auto id : ids) {
        auto* st = streams_.at(id).get();
        finish(id, st->cancelled ? error_code(boost::asio::error::operation_aborted)
                   : goaway_ && id > last_stream_id_ ? error_code(stream_errc::refused)
                                                     : ec);
    }
}

} // namespace tokenflight::http2
