#include "fleet/redis_store.hpp"

#include <tokenflight/error.hpp>

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <random>

namespace tokenflight::fleet {

namespace asio = boost::asio;

namespace {

// Deletes the lease only if it is still the caller's, and then announces an empty id: the lease
// ended without a token, so a process waiting for it may take it at once.
constexpr std::string_view release_script =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "  redis.call('del', KEYS[1]) redis.call('publish', ARGV[2], '') return 1 "
    "else return 0 end";

// Writes the record, announces it and ends the lease, if the lease is the caller's, or nobody's
// and the record there (if any) expires before this token does. The record expires with its
// token (PXAT), so its expiry is the server's time plus its PTTL. A holder whose lease passed to
// another process, and one that comes back after its successor published, never overwrite a
// newer token.
constexpr std::string_view publish_script =
    "local l = redis.call('get', KEYS[2]) "
    "if l and l ~= ARGV[1] then return 0 end "
    "if not l then "
    "  local ttl = redis.call('pttl', KEYS[1]) "
    "  if ttl > 0 then "
    "    local t = redis.call('time') "
    "    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "    if now + ttl >= tonumber(ARGV[3]) then return 0 end "
    "  end "
    "end "
    "redis.call('set', KEYS[1], ARGV[2], 'PXAT', ARGV[3]) "
    "redis.call('del', KEYS[2]) "
    "redis.call('publish', ARGV[4], ARGV[5]) "
    "return 1";

// result<bool> takes no error_code implicitly (a bool would convert too).
boost::system::result<bool> failed(error_code ec) { return {boost::system::in_place_error, ec}; }

std::string milliseconds_since_epoch(std::chrono::system_clock::time_point t) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

} // namespace

namespace {

// The checks the constructor makes before anything is derived.
const store_options& checked(const store_options& o, std::string_view key_material) {
    // A key from a few bytes (or none: a client without a secret) could be computed by anyone
    // who reads the key names.
    if (key_material.size() < 16)
        throw boost::system::system_error(errc::missing_credentials, "the shared store's key material is under 16 bytes");
    if (o.prefix.find_first_of("{}") != std::string::npos)
        throw boost::system::system_error(errc::invalid_url, "the shared store's key prefix holds a brace");
    return o;
}

} // namespace

redis_store::redis_store(asio::any_io_executor ex, redis::endpoint where, const credentials& creds,
                         std::string_view key_material, store_options options)
    : ex_(ex), where_(std::move(where)), options_(checked(options, key_material)),
      keys_(keys_for(options_.prefix, creds)), key_(record_key::derive(key_material, keys_.record)),
      conn_(ex, where_, redis::connection_options{.timeout = options_.timeout, .tls = options_.tls}) {}

asio::awaitable<error_code> redis_store::connect_gated(redis::connection& c) {
    const auto now = std::chrono::steady_clock::now();
    if (backoff_.count() > 0 && now < retry_at_) co_return last_connect_error_;
    ++connect_attempts_;
    if (auto ec = co_await c.connect()) {
        backoff_ = backoff_.count() == 0 ? options_.backoff : std::min(backoff_ * 2, options_.max_backoff);
        // Jittered (80% to 120%), so that a fleet does not come back in lockstep.
        thread_local std::minstd_rand jitter{std::random_device{}()};
        const auto spread = std::uniform_real_distribution<double>(0.8, 1.2)(jitter);
        retry_at_ = now + std::chrono::duration_cast<std::chrono::milliseconds>(backoff_ * spread);
        last_connect_error_ = ec;
        co_return ec;
    }
    backoff_ = std::chrono::milliseconds(0);
    co_return error_code{};
}

asio::awaitable<error_code> redis_store::ensure_connected() {
    if (conn_.is_open()) co_return error_code{};
    co_return co_await connect_gated(conn_);
}

asio::awaitable<boost::system::result<std::vector<redis::reply>>> redis_store::exec_idempotent(const redis::pipeline& p) {
    const bool was_open = conn_.is_open();
    if (auto ec = co_await ensure_connected()) co_return ec;
    auto r = co_await conn_.exec(p);
    // A connection idle long enough for Redis (or a NAT) to close it fails its first use: once
    // more on a fresh one.
    if (!r && was_open && r.error() == errc::connection_closed) {
        if (auto ec = co_await ensure_connected()) co_return ec;
        r = co_await conn_.exec(p);
    }
    co_return r;
}

asio::awaitable<boost::system::result<read_result>> redis_store::read() {
    redis::pipeline get;
    get.add({"GET", keys_.record});
    auto replies = co_await exec_idempotent(get);
    if (!replies) co_return replies.error();
    const auto& r = replies->front();
    read_result out;
    if (r.is_nil()) co_return out;
    if (r.type != redis::reply::kind::string) co_return error_code(errc::malformed_response);
    if (auto t = open(r.text, key_, keys_.record))
        out.token = std::move(*t);
    else
        out.unreadable = true; // another key, tampered, or garbage: ignored, and overwritten later
    co_return out;
}

asio::awaitable<boost::system::result<bool>> redis_store::acquire(std::string_view owner) {
    if (auto ec = co_await ensure_connected()) co_return failed(ec);
    const std::string ttl = std::to_string(options_.lease.count());
    redis::pipeline set;
    set.add({"SET", keys_.lease, owner, "NX", "PX", ttl});
    auto replies = co_await conn_.exec(set);
    if (!replies) co_return failed(replies.error());
    const auto& r = replies->front();
    if (r.is_nil()) co_return false; // someone holds it
    if (r.type != redis::reply::kind::status || r.text != "OK") co_return failed(errc::malformed_response);
    co_return true;
}

asio::awaitable<boost::system::result<bool>> redis_store::publish(const shared_token& token, std::string_view owner) {
    if (!fits_in_record(token)) co_return failed(errc::body_too_large);
    if (token.expires_at.time_since_epoch().count() <= 0) co_return failed(errc::bad_expires_in);
    if (auto ec = co_await ensure_connected()) co_return failed(ec);
    const std::string sealed = seal(token, key_, keys_.record);
    const std::string expires = milliseconds_since_epoch(token.expires_at);
    redis::pipeline p;
    p.add({"EVAL", publish_script, "2", keys_.record, keys_.lease, owner, sealed, expires, keys_.channel, token.id});
    auto replies = co_await conn_.exec(p);
    if (!replies) co_return failed(replies.error());
    const auto& r = replies->front();
    if (r.type != redis::reply::kind::integer) co_return failed(errc::malformed_response);
    co_return r.integer == 1;
}

asio::awaitable<boost::system::result<bool>> redis_store::release(std::string_view owner) {
    redis::pipeline p;
    p.add({"EVAL", release_script, "1", keys_.lease, owner, keys_.channel});
    auto replies = co_await exec_idempotent(p);
    if (!replies) co_return failed(replies.error());
    const auto& r = replies->front();
    if (r.type != redis::reply::kind::integer) co_return failed(errc::malformed_response);
    co_return r.integer == 1;
}

asio::awaitable<boost::system::result<std::optional<std::chrono::milliseconds>>> redis_store::lease_left() {
    redis::pipeline p;
    p.add({"PTTL", keys_.lease});
    auto replies = co_await exec_idempotent(p);
    if (!replies) co_return replies.error();
    const auto& r = replies->front();
    if (r.type != redis::reply::kind::integer) co_return error_code(errc::malformed_response);
    if (r.integer == -2) co_return std::optional<std::chrono::milliseconds>(); // no lease
    // -1 (a lease without expiry) is not ours to make: wait a whole lease for it at most.
    co_return std::optional<std::chrono::milliseconds>(r.integer < 0 ? options_.lease
                                                                     : std::chrono::milliseconds(r.integer));
}

asio::awaitable<boost::system::result<std::unique_ptr<redis_store::subscription>>> redis_store::subscribe() {
    auto c = std::make_unique<redis::connection>(ex_, where_,
                                                 redis::connection_options{.timeout = options_.timeout, .tls = options_.tls});
    if (auto ec = co_await connect_gated(*c)) co_return ec; // the same backoff as every call
    redis::pipeline p;
    p.add({"SUBSCRIBE", keys_.channel});
    auto replies = co_await c->exec(p);
    if (!replies) co_return replies.error();
    const auto& r = replies->front(); // ["subscribe", channel, 1]
    if (r.type != redis::reply::kind::array || r.elements.size() != 3 || r.elements[0].text != "subscribe")
        co_return error_code(errc::malformed_response);
    co_return std::unique_ptr<subscription>(new subscription(std::move(c)));
}

asio::awaitable<boost::system::result<std::optional<std::string>>>
redis_store::subscription::next(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        auto r = co_await conn_->next_pushed(deadline);
        if (!r) {
            if (r.error() == errc::request_timeout) co_return std::optional<std::string>();
            co_return r.error();
        }
        // ["message", channel, payload]; anything else (a ping's pong) is skipped.
        if (r->type == redis::reply::kind::array && r->elements.size() == 3 && r->elements[0].text == "message")
            co_return std::optional<std::string>(std::move(r->elements[2].text));
    }
}

} // namespace tokenflight::fleet
