#include "fleet/redis_token_store.hpp"

#include <tokenflight/redis_token_store.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/system/system_error.hpp>

#include <openssl/rand.h>

#include <mutex>

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
    s.issued_at = t.issued_at;
    return s;
}

} // namespace

// A claim's handler, completed once: when the claim ends, or at once when the source cancels
// it (close()), whichever comes first. Both happen on the handler's executor (the source's
// strand), where its cancellation slot is also emitted, so that the slot is never cleared and
// emitted at the same time.
struct redis_token_store::pending_claim {
    std::mutex mutex;
    std::optional<claim_handler> handler;

    std::optional<claim_handler> take() {
        std::lock_guard lock(mutex);
        auto out = std::move(handler);
        handler.reset();
        return out;
    }
};

redis_token_store::redis_token_store(asio::any_io_executor ex, redis::endpoint where, const credentials& creds,
                                     std::string_view key_material, store_options options)
    : strand_(asio::make_strand(ex)), options_(options),
      store_(strand_, std::move(where), creds, key_material, std::move(options)), owner_(random_owner()) {}

std::optional<tokenflight::shared_token>
redis_token_store::usable(const read_result& r, const std::string& replacing_id,
                          std::chrono::system_clock::time_point replacing_expiry) const {
    if (!r.token) return std::nullopt;
    if (r.token->id == replacing_id) return std::nullopt;
    if (r.token->expires_at <= replacing_expiry) return std::nullopt;
    if (r.token->expires_at <= std::chrono::system_clock::now()) return std::nullopt;
    return shared_of(*r.token);
}

asio::awaitable<std::tuple<error_code, shared_claim>> redis_token_store::claim(access_token replacing) {
    const std::string replacing_id = replacing ? token_id(replacing.value()) : std::string();
    const auto replacing_expiry =
        replacing ? std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                           replacing.expires_at() - clock::now())
                  : std::chrono::system_clock::time_point{};
    // Waiting for other holders is bounded as a whole: two leases, the longest a holder that
    // dies at once and a successor that does too can keep the lease.
    const auto give_up = std::chrono::steady_clock::now() + 2 * options_.lease;
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
        // Another process holds the lease: subscribe, read again (a publication between the
        // read above and the subscription is then seen), and wait for its announcement (a
        // token's id, or "" when it gave the lease up), at most for what is left of its lease.
        auto sub = co_await store_.subscribe();
        if (!sub) co_return std::tuple{sub.error(), out};
        auto now_there = co_await store_.read();
        if (!now_there) co_return std::tuple{now_there.error(), out};
        if (auto t = usable(*now_there, replacing_id, replacing_expiry)) {
            out.token = std::move(t);
            co_return std::tuple{error_code{}, out};
        }
        auto left = co_await store_.lease_left();
        if (!left) co_return std::tuple{left.error(), out};
        if (!*left) continue; // it ended meanwhile: try again now
        const auto now = std::chrono::steady_clock::now();
        if (now >= give_up) break;
        if (cancelled_) break;
        waiting_ = sub->get();
        auto heard = co_await (*sub)->next(std::min(give_up, now + **left + std::chrono::milliseconds(50)));
        waiting_ = nullptr;
        if (cancelled_) break;
        if (!heard) co_return std::tuple{heard.error(), out};
        // Announced, given up, or expired (a holder killed mid-request): read again.
    }
    // Still no token and someone else's lease: the source requests its own, and says so.
    co_return std::tuple{error_code(errc::request_timeout), out};
}

void redis_token_store::run(asio::awaitable<void> op) {
    asio::dispatch(strand_, [self = shared_from_this(), op = std::move(op)]() mutable {
        self->pending_.push_back(std::move(op));
        if (self->draining_) return;
        self->draining_ = true;
        asio::co_spawn(self->strand_, self->drain(self), asio::detached);
    });
}

asio::awaitable<void> redis_token_store::drain(std::shared_ptr<redis_token_store> /*alive until done*/) {
    while (!pending_.empty()) {
        auto op = std::move(pending_.front());
        pending_.pop_front();
        try {
            co_await std::move(op);
        } catch (...) {
            // Each operation completes its handler itself; one that could not (out of memory)
            // must not stop the ones queued behind it.
        }
    }
    draining_ = false;
}

namespace {

// Completes `h` on its own executor (the token source's strand), never inline on the store's.
template <class Handler, class... Args> void complete(Handler h, Args... args) {
    auto ex = asio::get_associated_executor(h);
    asio::dispatch(ex, [h = std::move(h), ... args = std::move(args)]() mutable { std::move(h)(std::move(args)...); });
}

} // namespace

asio::awaitable<void> redis_token_store::claim_op(access_token replacing, std::shared_ptr<pending_claim> p) {
    bool gone = false;
    {
        std::lock_guard lock(p->mutex);
        gone = !p->handler; // cancelled while queued: nothing to do
    }
    if (gone) co_return;
    cancelled_ = false; // claims run one at a time: this flag is this one's
    std::tuple<error_code, shared_claim> r;
    try {
        r = co_await claim(std::move(replacing));
    } catch (const std::exception&) {
        r = {asio::error::fault, shared_claim{}};
    }
    auto h = p->take();
    if (!h) { // cancelled: a lease taken for nobody is given back
        if (std::get<1>(r).lease) (void)co_await store_.release(owner_);
        co_return;
    }
    auto ex = asio::get_associated_executor(*h);
    asio::dispatch(ex, [h = std::move(*h), r = std::move(r)]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(std::get<0>(r), std::move(std::get<1>(r)));
    });
}

asio::awaitable<void> redis_token_store::publish_op(tokenflight::shared_token token, done_handler h) {
    error_code ec;
    try {
        fleet::shared_token t;
        t.id = token_id(token.value.reveal());
        t.value = std::move(token.value);
        t.type = std::move(token.type);
        t.scope = std::move(token.scope);
        t.expires_at = token.expires_at;
        t.issued_at = token.issued_at;
        auto written = co_await store_.publish(t, owner_);
        if (!written) ec = written.error();
    } catch (const std::exception&) {
        ec = asio::error::fault;
    }
    complete(std::move(h), ec);
}

asio::awaitable<void> redis_token_store::abandon_op(done_handler h) {
    error_code ec;
    try {
        auto released = co_await store_.release(owner_);
        if (!released) ec = released.error();
    } catch (const std::exception&) {
        ec = asio::error::fault;
    }
    complete(std::move(h), ec);
}

void redis_token_store::async_claim(access_token replacing, claim_handler handler) {
    auto p = std::make_shared<pending_claim>();
    auto slot = asio::get_associated_cancellation_slot(handler);
    p->handler.emplace(std::move(handler));
    if (slot.is_connected())
        slot.assign([w = std::weak_ptr<pending_claim>(p), store = weak_from_this()](asio::cancellation_type) {
            auto p = w.lock();
            auto self = store.lock();
            if (!p || !self) return;
            auto h = p->take();
            if (!h) return;
            // Not inline (the slot is being emitted): on the store's strand, the claim stops
            // waiting; then the handler runs on its own executor (asio::post takes no
            // any_completion_executor).
            asio::post(self->strand_, [self, h = std::move(*h)]() mutable {
                self->cancelled_ = true;
                if (self->waiting_) self->waiting_->close();
                complete(std::move(h), error_code(asio::error::operation_aborted), shared_claim{});
            });
        });
    run(claim_op(std::move(replacing), std::move(p)));
}

void redis_token_store::async_publish(tokenflight::shared_token token, done_handler handler) {
    run(publish_op(std::move(token), std::move(handler)));
}

void redis_token_store::async_abandon(done_handler handler) { run(abandon_op(std::move(handler))); }

} // namespace tokenflight::fleet

namespace tokenflight {

std::shared_ptr<shared_token_store> make_redis_token_store(boost::asio::any_io_executor ex, const credentials& creds,
                                                           redis_store_options options) {
    auto where = redis::parse_redis_url(options.url);
    if (!where) throw boost::system::system_error(where.error(), "the shared store's Redis URL");
    fleet::store_options o;
    o.prefix = std::move(options.key_prefix);
    o.timeout = options.timeout;
    o.lease = options.lease;
    o.tls = std::move(options.tls);
    o.backoff = options.backoff;
    o.max_backoff = options.max_backoff;
    const secret& material = options.key_material.empty() ? creds.client_secret : options.key_material;
    return std::make_shared<fleet::redis_token_store>(std::move(ex), std::move(*where), creds, material.reveal(),
                                                      std::move(o));
}

} // namespace tokenflight
