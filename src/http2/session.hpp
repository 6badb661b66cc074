// One HTTP/2 client connection's protocol, without I/O (issue 19): nghttp2 does the framing,
// HPACK and flow control; bytes go in with receive() and come out of take_output(), so that
// the connection's own Asio socket (TLS with ALPN "h2", or cleartext h2c) carries them.
//
// Bounded against a hostile server, by construction:
// - each response's header list (names + values + 32 per field, RFC 9113 section 6.5.2), and
//   body, are limited: past a limit the stream is reset (CANCEL) and fails with a typed error;
// - CONTINUATION frames per header block are capped (nghttp2's option, Debian's 1.52 has it);
// - the HPACK tables stay at 4 KiB; SETTINGS, PING and RST floods are nghttp2's to refuse;
// - server push is off; requests beyond the server's MAX_CONCURRENT_STREAMS are not submitted
//   (can_submit(): the caller queues them).
// A stream the server never processed (REFUSED_STREAM, or above a GOAWAY's last stream id)
// fails with a "resendable" error; others with theirs.
#ifndef TOKENFLIGHT_HTTP2_SESSION_HPP
#define TOKENFLIGHT_HTTP2_SESSION_HPP

#include <tokenflight/error.hpp>

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

struct nghttp2_session;

namespace tokenflight::http2 {

/// How one stream failed.
enum class stream_errc {
    refused = 1,          ///< REFUSED_STREAM, or above a GOAWAY's last stream id: never processed, resendable
    reset,                ///< RST_STREAM from the server (another code), or the connection ended mid-stream
    header_list_too_large,///< the response's header list passed limits::max_header_list
    body_too_large,       ///< the response's body passed limits::max_body
    connection_error,     ///< the connection failed (a protocol error, a flood, too many CONTINUATIONs)
};
const boost::system::error_category& stream_category() noexcept;
inline error_code make_error_code(stream_errc e) noexcept { return {static_cast<int>(e), stream_category()}; }

/// Whether a stream that failed with `ec` was never processed by the server (may be resent).
inline bool resendable(const error_code& ec) noexcept { return ec == make_error_code(stream_errc::refused); }

struct limits {
    std::size_t max_header_list = 64 * 1024;   ///< per response, RFC 9113's accounting
    std::size_t max_body = 16 * 1024 * 1024;   ///< per response
    std::size_t max_continuations = 8;         ///< CONTINUATION frames per header block
    std::int32_t stream_window = 1 << 20;      ///< initial receive window of each stream
    std::int32_t connection_window = 16 << 20; ///< the connection's receive window
};

using field_view = std::pair<std::string_view, std::string_view>;

/// A request by reference, as the pool's transport gives it: the pseudo-headers are built here,
/// from these fields only (a caller's header never becomes one). The fields need to live through
/// submit() only; the body until the stream completes.
struct request_view {
    std::string_view method = "GET";
    std::string_view scheme = "https";
    std::string_view authority{};         ///< host[:port]
    std::string_view path = "/";          ///< origin-form, with the query
    std::span<const field_view> headers{}; ///< names in any case: sent lower-cased
    std::string_view body{};
    std::size_t body_limit = SIZE_MAX;   ///< this response's body, at most (and limits::max_body)
    bool keep_body = true;               ///< false: the body is counted (response::body_size), not kept
    /// false: of the response's fields only www-authenticate, retry-after and dpop-nonce are
    /// kept (what a brief response reads); all still count against the header-list limit.
    bool keep_fields = true;
};

/// A request owning its parts (tests): the pseudo-headers are built from these fields only.
struct request {
    std::string method = "GET";
    std::string scheme = "https";
    std::string authority;                                    ///< host[:port]
    std::string path = "/";                                   ///< origin-form, with the query
    std::vector<std::pair<std::string, std::string>> headers; ///< sent lower-cased
    std::string body;
};

struct response {
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers; ///< as received (lower case)
    std::string body;                                         ///< empty unless keep_body
    std::uint64_t body_size = 0;                              ///< body bytes received
};

/// One finished stream: its response, or why it has none.
struct completed {
    std::int32_t stream_id = 0;
    error_code error;
    response res;
};

class client_session {
public:
    explicit client_session(limits l = {});
    ~client_session();
    client_session(const client_session&) = delete;
    client_session& operator=(const client_session&) = delete;

    /// Whether another stream may be opened now: the server's MAX_CONCURRENT_STREAMS (100 until
    /// its SETTINGS come) not reached, no GOAWAY received, the connection not failed.
    bool can_submit() const;

    /// Queues `req` as a new stream; its id. Refused before anything is queued:
    /// errc::invalid_header_name / invalid_header_value (CR, LF, NUL, a control, an upper-case
    /// or pseudo-header name, a connection-specific field), errc::invalid_method,
    /// errc::invalid_request_target; errc::closed when can_submit() is false.
    boost::system::result<std::int32_t> submit(request req);
    /// The same for a request by reference (see request_view for what must stay valid).
    boost::system::result<std::int32_t> submit(const request_view& req);

    /// Resets a stream (CANCEL): a cancelled request ends its stream, not the connection. Its
    /// completion is asio::error::operation_aborted.
    void cancel(std::int32_t stream_id);

    /// Feeds bytes read from the socket. An error is the connection's: every open stream then
    /// completes with stream_errc::connection_error (or refused, when the server said it never
    /// processed it), and the session is over.
    error_code receive(std::string_view bytes);

    /// What is to be written to the socket now (the preface and SETTINGS first), appended to
    /// `out`; empty when nothing is.
    void take_output(std::string& out);

    /// Streams finished since the last call, in the order they finished.
    std::vector<completed> take_completed();

    /// Sends a PING (for idle health); ping_outstanding() until its ACK arrives.
    void ping();
    bool ping_outstanding() const noexcept { return ping_outstanding_; } ///< see ping()
    /// Sends GOAWAY (NO_ERROR): no new stream is accepted by either side; open streams finish.
    void shutdown();

    /// Streams open (submitted, not finished).
    std::size_t open_streams() const noexcept { return streams_.size(); }
    /// The server's SETTINGS frame arrived (the connection is ready, with its limits known).
    bool settings_received() const noexcept { return settings_; }
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS come, as RFC 9113
    /// section 6.5.2 recommends assuming no less than).
    std::uint32_t peer_max_streams() const;
    /// The connection failed (receive() or take_output() reported it): nothing more will happen.
    bool failed() const noexcept { return failed_; }
    /// A GOAWAY came; last_stream_id() is the highest stream the server may have processed.
    bool goaway_received() const noexcept { return goaway_; }
    std::int32_t last_stream_id() const noexcept { return last_stream_id_; }
    /// Neither side has anything more to say: the connection may be closed.
    bool finished() const;

private:
    struct stream;
    friend struct callbacks;

    boost::system::result<std::int32_t> submit(const request_view& req, std::unique_ptr<stream> st);
    void fail_all(error_code ec);
    void finish(std::int32_t id, error_code ec);

    limits limits_;
    nghttp2_session* session_ = nullptr;
    std::map<std::int32_t, std::unique_ptr<stream>> streams_;
    std::vector<completed> completed_;
    bool goaway_ = false;
    bool failed_ = false;
    bool settings_ = false;
    bool ping_outstanding_ = false;
    std::string scratch_; ///< lower-cased field names during submit()
    std::int32_t last_stream_id_ = 0;
    std::string preface_; ///< the server's first 9 bytes, until checked
};

} // namespace tokenflight::http2

namespace boost::system {
template <> struct is_error_code_enum<tokenflight::http2::stream_errc> : std::true_type {};
} // namespace boost::system

#endif
