#include <tokenflight/client.hpp>

#include "access.hpp"
#include "hook.hpp"
#include "http/pool_impl.hpp"
#include "http/prepared.hpp"
#include "recycler.hpp"
#include "spawn.hpp"
#include "token_source_impl.hpp"

#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/www_authenticate.hpp>

#include <boost/beast/core/string.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace tokenflight {

namespace detail {

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// Waits on the source from inside a coroutine without the public wrapper's indirection: a token
// newer than `after` (0: any), with the failure's diagnostics written to `diag` when set.
auto wait_for_token(const std::shared_ptr<token_source_impl>& src, std::uint64_t after, diagnostics* diag) {
    return asio::async_initiate<decltype(tuple_awaitable), void(error_code, access_token)>(
        [src, after, diag](auto handler) { src->start(token_source_impl::handler_type(std::move(handler)), diag, after); },
        tuple_awaitable);
}

// Cancellation types as the client's slow path passes them on (see http::detail::exchange_op):
// every type until the request was sent once, then terminal and partial only.
asio::cancellation_type any_type(asio::cancellation_type t) noexcept { return t; }
asio::cancellation_type once_sent(asio::cancellation_type t) noexcept {
    return t & (asio::cancellation_type::terminal | asio::cancellation_type::partial);
}
} // namespace

// What a caller gave with one request besides the request itself.
struct request_params {
    http::send_options opts;
    diagnostics* diag = nullptr; // written at completion when set
};

class client_impl {
public:
    client_impl(std::shared_ptr<token_source_impl> source, std::shared_ptr<http::detail::pool_impl> pool,
                client_options options)
        : source_(std::move(source)), pool_(std::move(pool)), options_(std::move(options)) {
        // Checked again where every request is serialised; failing here tells the user at once.
        for (const auto& [name, value] : options_.default_headers) {
            if (!http::is_token(name)) throw boost::system::system_error(make_error_code(errc::invalid_header_name));
            if (!http::is_field_value(value))
                throw boost::system::system_error(make_error_code(errc::invalid_header_value));
        }
        if (options_.auth_scheme && !options_.auth_scheme->empty() && !http::is_token(*options_.auth_scheme))
            throw boost::system::system_error(make_error_code(errc::invalid_header_value));
    }

    // What a request needs of the form it is sent in. A message: the client completes a Beast
    // request (default headers, Host, User-Agent) and serialises it per send, with the
    // Authorization of that send's token.
    struct message_form {
        http::location to;
        http::request req;
        std::string head;
        http::detail::wire_request wire;
        using reader = http::detail::full_reader;
        const http::origin& origin() const noexcept { return to.origin; }
        std::string_view method() const noexcept {
            const auto m = req.method_string();
            return {m.data(), m.size()};
        }
        std::string_view target() const noexcept { // what is sent: the caller's own, or the URL's
            const auto t = req.target();
            return {t.data(), t.size()};
        }
        error_code authorize(std::string_view scheme, const access_token& t, std::string_view dpop_proof) {
            std::string value;
            value.reserve(scheme.size() + 1 + t.value().size());
            if (!scheme.empty()) {
                value += scheme;
                value += ' ';
            }
            value += t.value();
            req.set(http::field::authorization, value);
            if (dpop_proof.empty())
                req.erase("DPoP");
            else
                req.set("DPoP", dpop_proof); // checked with the whole head below
            head.clear();
            if (auto ec = http::serialize_request_head(req, head)) return ec;
            wire = http::detail::wire_of(head, req);
            return {};
        }
    };

    // A prepared request: its head is ready; the Authorization line of the token's generation
    // comes from the request's cache (built once per generation), and one gather write sends it.
    template <class Reader>
    struct prepared_form {
        std::shared_ptr<http::detail::prepared_state> state;
        std::uint64_t source_id = 0; // the line cache is keyed by source: generations are per source
        std::shared_ptr<const http::detail::authorization_line> line; // in use by the send
        http::detail::wire_request wire;
        using reader = Reader;
        const http::origin& origin() const noexcept { return state->where.origin; }
        std::string_view method() const noexcept {
            const auto m = boost::beast::http::to_string(state->method);
            return {m.data(), m.size()};
        }
        std::string_view target() const noexcept { return state->where.target; }
        error_code authorize(std::string_view scheme, const access_token& t, std::string_view dpop_proof) {
            auto got = dpop_proof.empty() ? state->authorization_for(source_id, t.generation(), scheme, t.value())
                                          : http::detail::authorization_with_proof(scheme, t.value(), dpop_proof);
            if (!got) return got.error();
            line = std::move(*got);
            wire = state->wire(line.get());
            return {};
        }
    };

    template <class Form>
    using result_of = typename Form::reader::result_type;
    template <class Form>
    using handler_for = asio::any_completion_handler<void(error_code, result_of<Form>)>;

    // A request in its steady state: a cached token, one send through the pool, an answer that is
    // not a 401. Nothing is spawned: the request is this object, queued in the pool and completed
    // by a connection's loop. A 401 (or no cached token) continues in the run() coroutine.
    template <class Form>
    struct request_op final : http::detail::typed_exchange_op<typename Form::reader> {
        request_op(handler_for<Form> h, std::shared_ptr<client_impl> c, Form f, const request_params& p)
            : handler(std::move(h)), client(std::move(c)), form(std::move(f)), params(p) {}
        handler_for<Form> handler;
        std::shared_ptr<client_impl> client;
        Form form;
        request_params params;
        access_token token;
        asio::any_completion_executor work; // tracks work on the handler's executor, when not the pool's

        static request_op* make(handler_for<Form> h, std::shared_ptr<client_impl> c, Form f, const request_params& p) {
            void* mem = recycler<request_op>::allocate();
            try {
                return new (mem) request_op(std::move(h), std::move(c), std::move(f), p);
            } catch (...) {
                recycler<request_op>::deallocate(mem);
                throw;
            }
        }
        void destroy() noexcept {
            this->~request_op();
            recycler<request_op>::deallocate(this);
        }
        // Dropped unrun (the io_context shut down with the request in flight): the handler is
        // destroyed, not invoked.
        static void drop(http::detail::exchange_op& base) {
            auto& self = static_cast<request_op&>(base);
            auto slot = asio::get_associated_cancellation_slot(self.handler);
            if (slot.is_connected()) slot.clear();
            self.destroy();
        }
        static void complete(http::detail::exchange_op& base) {
            auto& self = static_cast<request_op&>(base);
            auto handler_ex = asio::get_associated_executor(self.handler, self.client->pool_->completion_executor());
            asio::dispatch(handler_ex, [op = &self] { op->finish(); });
        }
        // On the handler's executor, where its cancellation signal is emitted.
        void finish() {
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) slot.clear();
            auto h = std::move(handler);
            auto keep_working = std::move(work);
            auto c = std::move(client);
            error_code ec = this->ec;
            auto res = std::move(this->res);
            if (!ec) c->note_nonce(form.origin(), res);
            if (!ec && res.result_int() == 401 && !insufficient_scope(res)) {
                // Sent once: a cancellation that came meanwhile is honoured unless it is total.
                if ((this->cancelled() & once_sent(asio::cancellation_type::all)) != asio::cancellation_type::none) {
                    destroy();
                    std::move(h)(asio::error::operation_aborted, result_of<Form>{});
                    return;
                }
                auto f = std::move(form);
                auto t = std::move(token);
                const auto p = params;
                destroy();
                auto op = c->run(c, std::move(f), p, std::move(t), std::move(res), 1);
                spawn_request(c->slow_path_executor(), std::move(op), std::move(h));
                return;
            }
            if (!ec) c->note_answer(res.result_int(), token);
            if (params.diag) params.diag->clear();
            destroy();
            std::move(h)(ec, std::move(res));
        }
    };

    // A token must not cross a network in clear text: plain http only to loopback, unless the
    // credentials it was made from allow it.
    bool insecure(const http::origin& o) const { return http::is_insecure(o, source_->allows_insecure_http()); }

    // Finishes a message before its first send.
    error_code complete(message_form& f) const {
        if (insecure(f.to.origin)) return errc::insecure_transport;
        auto& req = f.req;
        if (req.target().empty()) req.target(f.to.target);
        for (const auto& [name, value] : options_.default_headers)
            if (req.find(name) == req.end()) req.set(name, value);
        http::detail::set_default_fields(req, f.to.origin, pool_->options().user_agent);
        req.prepare_payload();
        return {};
    }
    // Checked again per send (cached, cheap): a prepared request may come from
    // http::make_prepared_request rather than this client's prepare().
    template <class Reader>
    error_code complete(prepared_form<Reader>& f) const {
        if (!f.state) return asio::error::invalid_argument; // an empty prepared_request
        if (insecure(f.state->where.origin)) return errc::insecure_transport;
        if (f.state->has_authorization) return errc::invalid_header_name; // the client's to set, per token
        return {};
    }

    /// Starts a request: the steady state inline, anything else in run().
    template <class Form>
    void start(const std::shared_ptr<client_impl>& self, handler_for<Form> handler, Form form,
               const request_params& params) {
        requests_.fetch_add(1, std::memory_order_relaxed);
        if (auto ec = complete(form)) return fail<Form>(std::move(handler), ec, params);
        access_token token = source_->try_get(); // hot path: a cached usable token
        if (!token) {
            auto op = run(self, std::move(form), params, {}, result_of<Form>{}, 0);
            return spawn_request(slow_path_executor(), std::move(op), std::move(handler));
        }
        auto* op = request_op<Form>::make(std::move(handler), self, std::move(form), params);
        if (error_code aec = authorize(op->form, token)) {
            token_failed(aec, token.generation());
            auto h = std::move(op->handler);
            op->destroy();
            return fail<Form>(std::move(h), aec, params);
        }
        op->token = std::move(token);
        pool_->configure(*op, op->form.origin(), op->form.wire, op->params.opts);
        if (const auto& id = source_->identity()) op->identity = &id; // see run()
        op->kind = http::detail::kind_of<typename Form::reader>();
        op->on_complete = &request_op<Form>::complete;
        op->on_destroy = &request_op<Form>::drop;
        op->work = pool_->work_for(op->handler);
        auto slot = asio::get_associated_cancellation_slot(op->handler);
        if (slot.is_connected()) slot.template emplace<http::detail::exchange_canceller>(pool_.get(), op);
        try {
            pool_->submit(*op); // throws only before the request was handed over
        } catch (...) {
            request_op<Form>::drop(*op);
            throw;
        }
    }

    // Completes `handler` with `ec`, posted: never inside the initiating call.
    template <class Form>
    void fail(handler_for<Form> handler, error_code ec, const request_params& params) {
        if (params.diag) params.diag->clear();
        auto handler_ex = asio::get_associated_executor(handler, executor());
        asio::post(executor(), asio::bind_executor(std::move(handler_ex), [h = std::move(handler), ec]() mutable {
                       std::move(h)(ec, result_of<Form>{});
                   }));
    }

    // The request's life beyond the steady state: a token to wait for, a send, and on 401 one
    // newer token for every request that saw this generation fail, then a resend; never a loop.
    // Entered with no token (sends = 0) or with the 401 `res` of the first send (sends = 1).
    // `self` keeps the client's state alive while the request runs, even if the client is destroyed.
    template <class Form>
    asio::awaitable<std::tuple<error_code, result_of<Form>>> run([[maybe_unused]] std::shared_ptr<client_impl> self,
                                                                  Form form, request_params params, access_token token,
                                                                  result_of<Form> res, int sends) {
        using result = std::tuple<error_code, result_of<Form>>;
        using reader = typename Form::reader;
        // A certificate-bound token goes on connections that present the source's certificate.
        if (const auto& id = source_->identity()) params.opts.identity = id;
        co_await asio::this_coro::throw_if_cancelled(false);
        // A cancellation that came before this coroutine's first step (the default filter keeps
        // terminal ones) would be lost by the reset below.
        const auto at_start = co_await asio::this_coro::cancellation_state; // own statement: GCC 12
        if (at_start.cancelled() != asio::cancellation_type::none) co_return result{asio::error::operation_aborted, {}};
        // Each type reaches the pool as it is: the pool decides by phase (http::detail::exchange_op).
        if (sends == 0)
            co_await asio::this_coro::reset_cancellation_state(any_type, any_type);
        else
            co_await asio::this_coro::reset_cancellation_state(once_sent, any_type);
        if (params.diag) params.diag->clear();
        if (!token) {
            auto [ec, t] = co_await wait_for_token(source_, 0, params.diag);
            if (ec) {
                token_failed(ec, 0);
                co_return result{ec, {}};
            }
            token = std::move(t);
        }
        bool nonce_resent = false;
        for (;;) {
            if (sends > 0 && use_dpop_nonce(res)) {
                // RFC 9449 section 9: the proof lacked the server's nonce, which came with this
                // answer (stored by note_nonce). A token cannot help: the same token once more,
                // with the nonce, and that send does not count as a 401. A second challenge
                // stands as the answer: no token request, no futility mark on the token.
                if (nonce_resent) co_return result{error_code{}, std::move(res)};
                nonce_resent = true;
                --sends;
                nonce_resends_.fetch_add(1, std::memory_order_relaxed);
            } else if (sends == 1) {
                // 401: the token was revoked or expired early. One newer token for every request
                // that saw this generation fail.
                auto [tec, newer] = co_await wait_for_token(source_, token.generation(), params.diag);
                if (tec == errc::refresh_backoff) {
                    // New tokens did not help lately: the 401 stands, and no token request is made.
                    held_back_.fetch_add(1, std::memory_order_relaxed);
                    notify(client_event::kind::refresh_held_back, token.generation());
                    if (params.diag) params.diag->clear();
                    co_return result{error_code{}, std::move(res)};
                }
                if (tec) {
                    token_failed(tec, token.generation());
                    co_return result{tec, {}};
                }
                resent(token.generation(), newer.generation());
                token = std::move(newer);
            } else if (sends > 1) {
                // A resend rejected too: sent once more only if the cache already holds a newer
                // token still (the request spanned two revocations); never more than max_sends.
                auto newest = source_->newer_than(token.generation());
                if (!newest || sends == max_sends) {
                    // A 401 for the newest token: final. If that token never worked, refreshing was
                    // futile and further reactive refreshes of the source are spaced out.
                    source_->report_futile(token.generation());
                    unauthorized_after_resend_.fetch_add(1, std::memory_order_relaxed);
                    notify(client_event::kind::unauthorized_after_resend, token.generation());
                    co_return result{error_code{}, std::move(res)};
                }
                resent(token.generation(), newest.generation());
                token = std::move(newest);
            }
            if (error_code aec = authorize(form, token)) {
                token_failed(aec, token.generation());
                co_return result{aec, {}};
            }
            auto op = pool_->async_exchange<reader>(form.origin(), form.wire, params.opts, tuple_awaitable);
            auto [ec, r] = co_await std::move(op);
            if (!ec) note_nonce(form.origin(), r);
            if (ec || r.result_int() != 401) {
                if (!ec) note_answer(r.result_int(), token);
                co_return result{ec, std::move(r)};
            }
            // A token cannot fix a missing scope (RFC 6750 section 3.1): return the 401 as it is.
            if (insufficient_scope(r)) co_return result{ec, std::move(r)};
            // Sent: from here only terminal and partial cancellation count, including one that
            // came while that send was completing.
            const auto now = co_await asio::this_coro::cancellation_state;
            if (once_sent(now.cancelled()) != asio::cancellation_type::none)
                co_return result{asio::error::operation_aborted, {}};
            if (sends++ == 0) co_await asio::this_coro::reset_cancellation_state(once_sent, any_type);
            res = std::move(r);
        }
    }

    boost::system::result<http::prepared_request> prepare(http::verb method, std::string_view url,
                                                          std::vector<std::pair<std::string, std::string>> headers,
                                                          std::string body) const {
        for (const auto& d : options_.default_headers) { // not a structured binding: clang 14 cannot capture one
            const bool given = std::any_of(headers.begin(), headers.end(),
                                           [&](const auto& h) { return boost::beast::iequals(h.first, d.first); });
            if (!given) headers.push_back(d);
        }
        // The Authorization line is the client's, per token generation (a default one included),
        // and so is a DPoP proof, per send.
        std::erase_if(headers, [](const auto& h) {
            return boost::beast::iequals(h.first, "authorization") || boost::beast::iequals(h.first, "dpop");
        });
        auto p = http::make_prepared_request(method, url, std::move(headers), std::move(body),
                                             pool_->options().user_agent);
        if (!p) return p;
        if (insecure(p->where().origin)) return error_code(errc::insecure_transport);
        return p;
    }

    message_form message(http::location to, http::request req) const { return {std::move(to), std::move(req), {}, {}}; }
    template <class Reader>
    prepared_form<Reader> prepared(const http::prepared_request& p) const {
        return {http::detail::prepared_access::shared_state(p), source_->id(), nullptr, {}};
    }

    client_stats stats() const {
        client_stats s;
        s.requests = requests_.load(std::memory_order_relaxed);
        s.resends_after_401 = resends_.load(std::memory_order_relaxed);
        s.unauthorized_after_resend = unauthorized_after_resend_.load(std::memory_order_relaxed);
        s.token_errors = token_errors_.load(std::memory_order_relaxed);
        s.refreshes_held_back = held_back_.load(std::memory_order_relaxed);
        s.dpop_nonce_resends = nonce_resends_.load(std::memory_order_relaxed);
        return s;
    }

    const asio::any_io_executor& executor() const noexcept { return pool_->executor(); }
    void close() { pool_->close(); }
    // A strand for one slow-path coroutine: a cancellation's emission is dispatched to the
    // coroutine's executor (co_spawn's cancellation handler), so it must be serialised with the
    // coroutine and with the completions it awaits, on however many threads the io_context runs.
    asio::any_io_executor slow_path_executor() const { return asio::make_strand(executor()); }

private:
    static constexpr int max_sends = 3;

    void notify(client_event::kind what, std::uint64_t generation, std::uint64_t new_generation = 0,
                error_code ec = {}) const {
        if (!options_.on_event) return;
        client_event e;
        e.what = what;
        e.generation = generation;
        e.new_generation = new_generation;
        e.error = ec;
        call_hook(options_.on_event, e);
    }
    void token_failed(error_code ec, std::uint64_t generation) {
        token_errors_.fetch_add(1, std::memory_order_relaxed);
        notify(client_event::kind::token_failed, generation, 0, ec);
    }
    void resent(std::uint64_t from, std::uint64_t to) {
        resends_.fetch_add(1, std::memory_order_relaxed);
        notify(client_event::kind::resend_after_401, from, to);
    }

    // A 2xx proves the generation works (and ends a futility backoff).
    void note_answer(unsigned status, const access_token& t) {
        if (status / 100 == 2) source_->report_ok(t.generation());
    }

    static bool insufficient_scope_in(std::string_view challenges) {
        for (const auto& c : parse_www_authenticate(challenges))
            if (boost::beast::iequals(c.error(), "insufficient_scope")) return true;
        return false;
    }
    static bool insufficient_scope(const http::response& res) {
        for (auto [it, end] = res.equal_range(http::field::www_authenticate); it != end; ++it)
            if (insufficient_scope_in(it->value())) return true;
        return false;
    }
    static bool insufficient_scope(const http::brief_response& res) noexcept { return res.insufficient_scope; }

    // DPoP (RFC 9449): the proof of a request, the nonces servers hand out, their challenges.
    template <class Form>
    error_code authorize(Form& form, const access_token& t) const {
        const auto scheme = scheme_for(t);
        if (!scheme) return scheme.error();
        std::string proof;
        if (const auto* prover = source_->dpop(); prover && *scheme == "DPoP") {
            auto made = prover->proof(form.method(), dpop_htu(form.origin(), form.target()),
                                      std::chrono::system_clock::now(), random_jti(),
                                      source_->nonces().get(form.origin()), t.value());
            if (!made) return made.error();
            proof = std::move(*made);
        }
        return form.authorize(*scheme, t, proof);
    }
    void note_nonce(const http::origin& o, const http::response& res) const {
        if (!source_->dpop()) return;
        if (auto n = res["DPoP-Nonce"]; !n.empty()) source_->nonces().update(o, std::string_view(n.data(), n.size()));
    }
    void note_nonce(const http::origin& o, const http::brief_response& res) const {
        if (source_->dpop() && !res.dpop_nonce.empty()) source_->nonces().update(o, res.dpop_nonce);
    }
    bool use_dpop_nonce(const http::response& res) const {
        if (!source_->dpop()) return false;
        for (auto [it, end] = res.equal_range(http::field::www_authenticate); it != end; ++it)
            for (const auto& c : parse_www_authenticate(it->value()))
                if (boost::beast::iequals(c.error(), "use_dpop_nonce")) return true;
        return false;
    }
    bool use_dpop_nonce(const http::brief_response& res) const { return source_->dpop() && res.use_dpop_nonce; }

    // RFC 6749 section 7.1: a client uses a token type it understands. Only Bearer (in any case)
    // is, unless the caller chose the scheme; it is sent in its canonical spelling.
    boost::system::result<std::string_view> scheme_for(const access_token& t) const {
        if (options_.auth_scheme) return std::string_view(*options_.auth_scheme);
        if (boost::beast::iequals(t.type(), "bearer")) return std::string_view("Bearer");
        // A DPoP-bound token (RFC 9449 section 7.1), sent with a proof: only by a source with DPoP.
        if (source_->dpop() && boost::beast::iequals(t.type(), "dpop")) return std::string_view("DPoP");
        return error_code(errc::unsupported_token_type);
    }

    std::shared_ptr<token_source_impl> source_;
    std::shared_ptr<http::detail::pool_impl> pool_;
    client_options options_;
    std::atomic<std::uint64_t> requests_{0}, resends_{0}, unauthorized_after_resend_{0}, token_errors_{0}, held_back_{0},
        nonce_resends_{0};
};

} // namespace detail

client::client(executor_type ex, token_source& source, client_options options)
    : owned_pool_(std::make_unique<http::connection_pool>(std::move(ex), options.pool)),
      impl_(std::make_shared<detail::client_impl>(detail::access::impl(source), detail::access::impl(*owned_pool_),
                                                  std::move(options))) {}

client::client(token_source& source, http::connection_pool& pool, client_options options)
    : impl_(std::make_shared<detail::client_impl>(detail::access::impl(source), detail::access::impl(pool),
                                                  std::move(options))) {}

client::~client() { close(); }

void client::close() {
    if (owned_pool_) owned_pool_->close();
}

void client::start(const std::shared_ptr<detail::client_impl>& impl, handler_type handler, http::location to,
                   http::request req, const http::send_options& opts, diagnostics* diag) {
    impl->start(impl, std::move(handler), impl->message(std::move(to), std::move(req)), {opts, diag});
}

void client::start_prepared(const std::shared_ptr<detail::client_impl>& impl, handler_type handler,
                            const http::prepared_request& req, const http::send_options& opts, diagnostics* diag) {
    impl->start(impl, std::move(handler), impl->prepared<http::detail::full_reader>(req), {opts, diag});
}

void client::start_brief(const std::shared_ptr<detail::client_impl>& impl, brief_handler_type handler,
                         const http::prepared_request& req, const http::send_options& opts, diagnostics* diag) {
    impl->start(impl, std::move(handler), impl->prepared<http::detail::brief_reader>(req), {opts, diag});
}

boost::system::result<http::prepared_request> client::prepare(http::verb method, std::string_view url,
                                                              std::vector<std::pair<std::string, std::string>> headers,
                                                              std::string body) const {
    return impl_->prepare(method, url, std::move(headers), std::move(body));
}

void client::start_url(const std::shared_ptr<detail::client_impl>& impl, handler_type handler, http::verb method,
                       std::string_view url, std::string body, diagnostics* diag) {
    const detail::request_params params{{}, diag};
    auto loc = http::parse_url(url);
    if (!loc) return impl->fail<detail::client_impl::message_form>(std::move(handler), loc.error(), params);
    http::request req{method, loc->target, 11};
    req.body() = std::move(body);
    impl->start(impl, std::move(handler), impl->message(std::move(*loc), std::move(req)), params);
}

client_stats client::stats() const { return impl_->stats(); }
client::executor_type client::get_executor() const noexcept { return impl_->executor(); }

} // namespace tokenflight
