#include "fleet/redis_token_store.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/rand.h>

namespace tokenflight::fleet {

namespace asio = boost::asio;

namespace {

std::string random_owner() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("RAND_bytes failed");
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

tokenflight::shared_token shared_of(const fleet::shared_token& t) {
    tokenflight::shared_token s;
    s.value = t.value;
    s.type = t.type;
    s.scope = t.scope;
    s.expires_at = t.expires_at;
    return s;
}

} // namespace

redis_token_store::redis_token_store(asio::any_io_executor ex, redis::endpoint where, const credentials& creds,
                                     std::string_view key_material, store_options options, std::chrono::seconds margin)
    : strand_(asio::make_strand(ex)), options_(options), margin_(margin),
      store_(strand_, std::move(where), creds, key_material, std::move(options)), owner_(random_owner()) {}

std::optional<tokenflight::shared_token>
redis_token_store::usable(const read_result& r, const std::string& replacing_id,
                          std::chrono::system_clock::time_point replacing_expiry) const {
    if (!r.token) return std::nullopt;
    if (r.token->id == replacing_id) return std::nullopt;
    if (r.token->expires_at <= replacing_expiry) return std::nullopt;
    if (r.token->expires_at - std::chrono::system_clock::now() <= margin_) return std::nullopt;
    return shared_of(*r.token);
}

asio::awaitable<std::tuple<error_code, shared_claim>> redis_token_store::claim(access_token replacing) {
    const std::string replacing_id = replacing ? token_id(replacing.value()) : std::string();
    const auto replacing_expiry =
        replacing ? std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                           replacing.expires_at() - clock::now())
                  : std::chrono::system_clock::time_point{};
    shared_claim out;
    for (int round = 0; round < 3; ++round) {
        auto seen = co_await store_.read();
        if (!seen) co_return std::tuple{seen.error(), out};
        if (auto t = usable(*seen, replacing_id, replacing_expiry)) {
            out.token = std::move(t);
            co_return std::tuple{error_code{}, out};
        }
        auto taken = co_await store_.acquire(owner_);
        if (!taken) co_return std::tuple{taken.error(), out};
        if (*taken) {
            auto again = co_await store_.read();
            if (!again) co_return std::tuple{again.error(), out};
            if (auto t = usable(*again, replacing_id, replacing_expiry)) {
                (void)co_await store_.release(owner_);
                out.token = std::move(t);
                co_return std::tuple{error_code{}, out};
            }
            out.lease = true;
            co_return std::tuple{error_code{}, out};
        }
        // Another process holds the lease: wait for its announcement.
        auto sub = co_await store_.subscribe();
        if (!sub) co_return std::tuple{sub.error(), out};
        auto now_there = co_await store_.read();
        if (!now_there) co_return std::tuple{now_there.error(), out};
        if (auto t = usable(*now_there, replacing_id, replacing_expiry)) {
            out.token = std::move(t);
            co_return std::tuple{error_code{}, out};
        }
        auto heard = co_await (*sub)->next(std::chrono::steady_clock::now() + options_.lease);
        if (!heard) co_return std::tuple{heard.error(), out};
        // Announced or not, read again at the top of the loop (a holder killed mid-request lets
        // its lease expire: the next round takes it).
    }
    co_return std::tuple{error_code{}, out}; // no token, no lease: fetch anyway
}

void redis_token_store::async_claim(access_token replacing,
                                    asio::any_completion_handler<void(error_code, shared_claim)> handler) {
    asio::co_spawn(strand_, claim(std::move(replacing)),
                   [h = std::move(handler)](std::exception_ptr ep, std::tuple<error_code, shared_claim> r) mutable {
                       auto [ec, c] = std::move(r);
                       if (ep) ec = asio::error::fault;
                       // On the handler's own executor (the token source's strand), not this one.
                       auto ex = asio::get_associated_executor(h);
                       asio::dispatch(ex, [h = std::move(h), ec, c = std::move(c)]() mutable { std::move(h)(ec, std::move(c)); });
                   });
}

void redis_token_store::async_publish(tokenflight::shared_token token,
                                      asio::any_completion_handler<void(error_code)> handler) {
    auto self = shared_from_this();
    asio::co_spawn(
        strand_,
        [self, token = std::move(token)]() -> asio::awaitable<error_code> {
            fleet::shared_token t;
            t.id = token_id(token.value.reveal());
            t.value = token.value;
            t.type = token.type;
            t.scope = token.scope;
            t.expires_at = token.expires_at;
            auto written = co_await self->store_.publish(t, self->owner_);
            co_return written ? error_code{} : written.error();
        },
        [h = std::move(handler)](std::exception_ptr ep, error_code ec) mutable {
            if (ep) ec = asio::error::fault;
            auto ex = asio::get_associated_executor(h);
            asio::dispatch(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
        });
}

void redis_token_store::async_abandon(asio::any_completion_handler<void(error_code)> handler) {
    auto self = shared_from_this();
    asio::co_spawn(
        strand_,
        [self]() -> asio::awaitable<error_code> {
            auto released = co_await self->store_.release(self->owner_);
            co_return released ? error_code{} : released.error();
        },
        [h = std::move(handler)](std::exception_ptr ep, error_code ec) mutable {
            if (ep) ec = asio::error::fault;
            auto ex = asio::get_associated_executor(h);
            asio::dispatch(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
        });
}

} // namespace tokenflight::fleet
