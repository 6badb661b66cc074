// Redis's protocol (RESP2) without I/O: commands formatted and replies read by hiredis's
// formatter and reader, over bytes that tokenflight's own Asio sockets carry. Every reply is
// bounded: a server (or anything answering on its port) cannot make the reader hold more than
// the limit given.
#ifndef TOKENFLIGHT_REDIS_RESP_HPP
#define TOKENFLIGHT_REDIS_RESP_HPP

#include <tokenflight/error.hpp>

#include <boost/system/result.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace tokenflight::redis {

/// One reply, converted from hiredis's.
struct reply {
    enum class kind { string, status, error, integer, nil, array };
    kind type = kind::nil;
    std::string text;            ///< string, status, error
    long long integer = 0;       ///< integer
    std::vector<reply> elements; ///< array

    bool is_error() const noexcept { return type == kind::error; }
    bool is_nil() const noexcept { return type == kind::nil; }
};

/// Appends one command, its arguments binary-safe ("*N\r\n$len\r\narg\r\n..."), to `out`.
/// hiredis's copy is wiped before it is freed: an argument may be a password.
void append_command(std::string& out, const std::vector<std::string_view>& args);

/// Reads replies out of the bytes a connection receives, however they are split.
class reply_reader {
public:
    /// A reply (or the bytes buffered towards the next one) above `max_bytes` is refused.
    explicit reply_reader(std::size_t max_bytes = 1024 * 1024);
    ~reply_reader();
    reply_reader(const reply_reader&) = delete;
    reply_reader& operator=(const reply_reader&) = delete;

    /// Takes more bytes. Fails (errc::body_too_large) when the reply under way would pass the
    /// limit; the reader is then unusable, as after a protocol error: close the connection.
    error_code feed(std::string_view bytes);

    /// The next complete reply, or nullopt until more bytes come. Fails (errc::malformed_response)
    /// on bytes that are not RESP, and (errc::body_too_large) on an array announcing more
    /// elements than the limit could hold, before hiredis allocates them.
    boost::system::result<std::optional<reply>> next();

    /// Bytes received and not yet read as a reply.
    std::size_t buffered() const noexcept;

private:
    struct reader_free {
        void operator()(redisReader* r) const;
    };
    friend struct array_hook;
    std::unique_ptr<redisReader, reader_free> reader_;
    std::size_t max_bytes_;
    bool array_too_long_ = false; ///< set by the array hook (hiredis only sees out-of-memory)
    std::size_t pending_ = 0; ///< bytes fed since the last complete reply
    bool failed_ = false;
};

} // namespace tokenflight::redis

#endif
