// Private to tokenflight: what a prepared_request holds, and the wire form of a request.
#ifndef TOKENFLIGHT_SRC_HTTP_PREPARED_HPP
#define TOKENFLIGHT_SRC_HTTP_PREPARED_HPP

#include <tokenflight/http/prepared_request.hpp>

#include <boost/asio/buffer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace tokenflight::http::detail {

/// Sets Host (the origin's authority, the default port left out) and User-Agent (unless empty)
/// where `req` has none: what every request path sends.
void set_default_fields(request& req, const origin& to, std::string_view user_agent);

/// A request as it goes on the wire: head and body in up to four buffers, one gather write.
struct wire_request {
    std::array<boost::asio::const_buffer, 4> parts{};
    verb method = verb::get;
    bool keep_alive = true;
};

/// The Authorization line of one token: "Authorization: <scheme> <token>\r\n". Generations
/// count from 1 in every token source, so the line is keyed by the source and the scheme too: a
/// request sent through two clients never gets the other's token.
struct authorization_line {
    std::uint64_t source = 0;
    std::uint64_t generation = 0;
    std::string scheme;
    std::string line;
    bool is(std::uint64_t src, std::uint64_t gen, std::string_view sch) const noexcept {
        return source == src && generation == gen && scheme == sch;
    }
};

/// A one-off Authorization line with a DPoP proof after it ("Authorization: DPoP t\r\nDPoP: p\r\n"):
/// a proof is made for one send, so the line is not cached. Checked as authorization_for checks.
boost::system::result<std::shared_ptr<const authorization_line>>
authorization_with_proof(std::string_view scheme, std::string_view token, std::string_view proof);

struct prepared_state {
    location where;
    verb method = verb::get;
    std::string head; // request line and fields, without Authorization and the blank line
    std::string body;
    bool keep_alive = true;
    bool has_authorization = false; // the head carries one of its own (the pool sends it as is)
    // The line of the generation sent last: rebuilt only when the token generation changes. A
    // mutex, not std::atomic<std::shared_ptr>: libstdc++ 12's load() releases its internal lock
    // with a relaxed store, a data race with the next writer (ThreadSanitizer reports it).
    mutable std::mutex authorization_mutex;
    std::shared_ptr<const authorization_line> authorization; // under authorization_mutex
    std::atomic<std::uint64_t> authorization_builds{0};

    /// The Authorization line for `generation` of token source `source` (`scheme` empty: the raw
    /// token), from the cache or built now; errc::invalid_header_value (never cached) when scheme
    /// or token could break the line.
    boost::system::result<std::shared_ptr<const authorization_line>>
    authorization_for(std::uint64_t source, std::uint64_t generation, std::string_view scheme, std::string_view token);

    /// The wire form with `auth` (may be null: no Authorization). The buffers point into this
    /// state and into `*auth`: both must outlive the write.
    wire_request wire(const authorization_line* auth) const noexcept;
};

struct prepared_access {
    static bool empty(const prepared_request& p) noexcept { return !p.state_; }
    static prepared_state& state(const prepared_request& p) noexcept { return *p.state_; }
    static std::shared_ptr<prepared_state> shared_state(const prepared_request& p) noexcept { return p.state_; }
    static prepared_request make(std::shared_ptr<prepared_state> s) noexcept {
        prepared_request p;
        p.state_ = std::move(s);
        return p;
    }
};

} // namespace tokenflight::http::detail

#endif
