#include "runner.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <numeric>

namespace tokenflight::load {

namespace asio = boost::asio;

std::string error_kind(const error_code& ec) {
    if (ec.category() == error_category()) return std::string(to_string(static_cast<errc>(ec.value())));
    if (ec.category() == oauth_category()) return std::string(to_string(static_cast<oauth_errc>(ec.value())));
    if (ec == asio::error::connection_refused) return "connection_refused";
    if (ec == asio::error::connection_reset) return "connection_reset";
    if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again) return "host_not_found";
    if (ec == asio::error::operation_aborted) return "aborted";
    if (ec.category() == asio::error::get_ssl_category() || ec.category() == asio::ssl::error::get_stream_category())
        return "tls";
    return "other";
}

tally::tally(std::size_t target_count) {
    if (target_count > 1)
        for (std::size_t k = 0; k < target_count; ++k) targets.push_back(std::make_unique<target_tally>());
}

void tally::count_error(const error_code& ec) {
    failed.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(errors_mutex);
    ++errors[error_kind(ec)];
}

namespace {

struct shared_run {
    shared_run(send_function send, const plan& p, tally& t, std::function<void()> on_done)
        : send(std::move(send)), slice(p), results(t), on_done(std::move(on_done)),
          start(p.start.value_or(clock::now())) {}

    send_function send;
    plan slice; ///< this loop's part of the run
    tally& results;
    std::function<void()> on_done;
    clock::time_point start;
    std::optional<clock::time_point> deadline;
    std::atomic<std::uint64_t> next{0}; ///< this loop's count of requests taken, not the global index
    std::atomic<int> running{0};
};

asio::awaitable<void> worker(std::shared_ptr<shared_run> run) {
    auto& r = *run;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        // The global index of this loop's next request: loops share no counter on the way.
        const std::uint64_t i = static_cast<std::uint64_t>(r.slice.loop) +
                                r.next.fetch_add(1, std::memory_order_relaxed) * static_cast<std::uint64_t>(r.slice.loops);
        if (r.slice.requests && i >= *r.slice.requests) break;
        clock::time_point scheduled = clock::now();
        if (r.slice.rate) {
            // Open model: request i is due at its slot of the schedule whether or not earlier
            // ones are done, and its latency counts from then (no coordinated omission).
            const auto due = r.slice.rate->due(i);
            if (!due) break; // the stages are over
            scheduled = r.start + *due;
            if (r.deadline && scheduled >= *r.deadline) break;
            if (scheduled > clock::now()) {
                timer.expires_at(scheduled);
                co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            }
        } else if (r.deadline && scheduled >= *r.deadline) {
            break;
        }
        const std::size_t k = r.slice.order ? (*r.slice.order)[i % r.slice.order->size()] : 0;
        auto op = r.send(k);
        auto [ec, res] = co_await std::move(op);
        const auto latency = clock::now() - scheduled;
        const unsigned status = ec ? 0 : res.result_int();
        const bool ok = status >= 200 && status < 300;
        if (!r.results.targets.empty()) {
            auto& mine = *r.results.targets[k];
            mine.latency.record(latency);
            if (ec)
                mine.failed.fetch_add(1, std::memory_order_relaxed);
            else if (ok)
                mine.ok.fetch_add(1, std::memory_order_relaxed);
            mine.done.fetch_add(1, std::memory_order_relaxed);
        }
        r.results.latency.record(latency);
        if (ec) {
            r.results.count_error(ec);
        } else {
            if (status < r.results.status.size()) r.results.status[status].fetch_add(1, std::memory_order_relaxed);
            if (status == 401 && r.results.story) r.results.story->unauthorized();
            if (ok) r.results.ok.fetch_add(1, std::memory_order_relaxed);
        }
        r.results.done.fetch_add(1, std::memory_order_relaxed);
    }
    if (r.running.fetch_sub(1) == 1) r.on_done();
}

} // namespace

std::vector<std::uint32_t> weighted_order(const std::vector<unsigned>& weights) {
    // Each turn every target gains its weight and the one furthest ahead goes, paying back the
    // sum: nginx's smooth weighted round-robin.
    unsigned divisor = 0;
    for (auto w : weights) divisor = std::gcd(divisor, w);
    std::vector<std::int64_t> weight(weights.size()), credit(weights.size(), 0);
    std::int64_t sum = 0;
    for (std::size_t k = 0; k < weights.size(); ++k) sum += weight[k] = divisor ? weights[k] / divisor : 0;
    std::vector<std::uint32_t> order;
    order.reserve(static_cast<std::size_t>(sum));
    for (std::int64_t turn = 0; turn < sum; ++turn) {
        std::size_t best = 0;
        for (std::size_t k = 0; k < weights.size(); ++k) {
            credit[k] += weight[k];
            if (credit[k] > credit[best]) best = k;
        }
        credit[best] -= sum;
        order.push_back(static_cast<std::uint32_t>(best));
    }
    return order;
}

int share(int total, int loop, int loops) {
    return total / loops + (loop < total % loops ? 1 : 0);
}

plan plan_for_loop(const plan& whole, int loop, int loops, clock::time_point start) {
    plan p = whole;
    p.concurrency = share(whole.concurrency, loop, loops);
    p.loop = loop;
    p.loops = loops;
    p.start = start;
    return p;
}

void start_load(const asio::any_io_executor& ex, send_function send, const plan& p, tally& t,
                std::function<void()> on_done) {
    auto run = std::make_shared<shared_run>(std::move(send), p, t, std::move(on_done));
    if (p.duration) run->deadline = run->start + *p.duration;
    if (p.concurrency < 1) {
        asio::post(ex, std::move(run->on_done));
        return;
    }
    run->running = p.concurrency;
    for (int i = 0; i < p.concurrency; ++i) asio::co_spawn(ex, worker(run), asio::detached);
}

} // namespace tokenflight::load
