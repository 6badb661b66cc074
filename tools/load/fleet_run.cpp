#include "fleet_run.hpp"

#include "redis/connection.hpp"
#include "redis/url.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "timeline.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <limits>
#include <cstdio>
#include <exception>
#include <iostream>
#include <thread>

namespace tokenflight::load {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr int exit_not_all_2xx = 1, exit_setup = 2;
constexpr const char* key_ttl_s = "86400";
// The run's coordination is not on any request's path: a generous step timeout.
constexpr std::chrono::milliseconds step_timeout{10'000};
// A result is one worker's --json object: its timeline grows 200 bytes a second.
constexpr std::size_t max_result_bytes = 64 * 1024 * 1024;
constexpr long long max_workers = 10'000; // --workers' bound

std::string run_key(const std::string& id, const char* what) { return "tokenflight:run:" + id + ":" + what; }

// One Redis connection, used synchronously: each exec() runs its own io_context until done.
class redis_link {
public:
    explicit redis_link(const config& cfg, redis::endpoint where)
        : conn_(ioc_.get_executor(), std::move(where),
                redis::connection_options{.timeout = step_timeout, .max_reply_bytes = max_result_bytes,
                                          .tls = redis_tls(cfg)}) {}

    boost::system::result<std::vector<redis::reply>> exec(const redis::pipeline& p) {
        boost::system::result<std::vector<redis::reply>> out = error_code(asio::error::fault);
        std::exception_ptr failure;
        asio::co_spawn(
            ioc_,
            [&]() -> asio::awaitable<void> {
                if (!conn_.is_open())
                    if (auto ec = co_await conn_.connect()) {
                        out = ec;
                        co_return;
                    }
                out = co_await conn_.exec(p);
            },
            [&](std::exception_ptr e) { failure = e; });
        ioc_.restart();
        ioc_.run();
        if (failure) std::rethrow_exception(failure);
        // A Redis error reply (a wrong type under our key, an ACL refusal) fails the step too.
        if (out)
            for (const auto& r : *out)
                if (r.is_error()) return error_code(errc::malformed_response);
        return out;
    }

private:
    asio::io_context ioc_;
    redis::connection conn_;
};

// The link for cfg's --redis, or why not.
std::variant<std::unique_ptr<redis_link>, std::string> link_for(const config& cfg) {
    auto where = redis::parse_redis_url(cfg.redis_url);
    if (!where) return "bad --redis URL: " + where.error().message();
    return std::make_unique<redis_link>(cfg, std::move(*where));
}

std::string failed(const char* step, const error_code& ec) {
    return std::string("Redis, ") + step + ": " + ec.message();
}

// --- merging ----------------------------------------------------------------------------------

struct bad_result {}; // thrown by the readers below, caught by merge()

std::uint64_t u64(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v) throw bad_result{};
    return v->to_number<std::uint64_t>(); // throws on a non-number, a negative or a fraction
}

// A time or duration in seconds or milliseconds. Marks may be negative: the first token is
// fetched before the load's clock starts.
double real(const json::value& v) {
    const double d = v.to_number<double>();
    if (!(d >= -1e9 && d <= 1e9)) throw bad_result{};
    return d;
}

std::chrono::nanoseconds from_ms(const json::value& v) {
    return std::chrono::nanoseconds(static_cast<std::int64_t>(real(v) * 1e6));
}

const json::object& obj(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_object()) throw bad_result{};
    return v->get_object();
}

const json::array& arr(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_array()) throw bad_result{};
    return v->get_array();
}

// Adds a --json latency_distribution into `h`, bucket by bucket.
void add_distribution(histogram& h, const json::object& d, std::chrono::nanoseconds max) {
    for (const auto& b : arr(d, "buckets")) {
        const auto& triple = b.as_array();
        if (triple.size() != 3) throw bad_result{};
        const auto low = triple[0].to_number<std::uint64_t>();
        const auto bucket = histogram::bucket_of(low);
        if (histogram::bucket_low(bucket) != low) throw bad_result{};
        h.add(bucket, triple[2].to_number<std::uint64_t>(), max);
    }
}

// A status or error count's key: a code from 0 to 999, or a short error name.
bool plain_name(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

// Sums of counts read from Redis: an overflow is a bad result, not a wrapped count.
void add_to(std::uint64_t& sum, std::uint64_t n) {
    if (sum + n < sum) throw bad_result{};
    sum += n;
}
void add_to(std::atomic<std::uint64_t>& sum, std::uint64_t n) {
    std::uint64_t s = sum.load();
    add_to(s, n);
    sum.store(s);
}
// Workers' threads and requests in flight, summed into the merged config's ints.
void add_to(int& sum, std::uint64_t n) {
    sum = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(sum) + std::min<std::uint64_t>(n, 1u << 30),
                                                   std::numeric_limits<int>::max()));
}

// Names from Redis are printed: no control character reaches the terminal.
std::string printable(std::string_view s) {
    std::string out(s.substr(0, 1024));
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    return out;
}

struct merged {
    explicit merged(std::size_t targets) : t(targets) {}
    config cfg;
    tally t;
    summary sum;
    std::vector<timeline_row> rows;
    std::vector<token_fetch_mark> fetches;
    std::vector<unauthorized_storm> storms;
    std::uint64_t dropped = 0;
};

void absorb_row(timeline_row& into, const json::object& r) {
    into.end_s = std::max(into.end_s, real(r.at("end_s")));
    into.length_s = std::max(into.length_s, real(r.at("length_s")));
    add_to(into.requests, u64(r, "requests"));
    add_to(into.errors, u64(r, "errors"));
    for (int k = 2; k <= 5; ++k)
        add_to(into.status_class[static_cast<std::size_t>(k)], u64(r, "status_" + std::to_string(k) + "xx"));
    add_to(into.status_class[0], u64(r, "status_other"));
    // Percentiles do not add up: the merged row shows the highest worker's, an upper bound.
    into.p50 = std::max(into.p50, from_ms(r.at("p50_ms")));
    into.p90 = std::max(into.p90, from_ms(r.at("p90_ms")));
    into.p99 = std::max(into.p99, from_ms(r.at("p99_ms")));
    into.max = std::max(into.max, from_ms(r.at("max_ms")));
    add_to(into.token_fetches, u64(r, "token_fetches"));
    add_to(into.unauthorized, u64(r, "unauthorized"));
    add_to(into.resends, u64(r, "resends"));
    add_to(into.connections, u64(r, "connections"));
}

void absorb(merged& m, const json::object& o) {
    const auto requests = u64(o, "requests"), ok = u64(o, "ok");
    if (ok > requests) throw bad_result{};
    add_to(m.t.done, requests);
    add_to(m.t.ok, ok);
    for (const auto& [code, n] : obj(o, "status")) {
        if (code.empty() || code.size() > 3 ||
            !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
            throw bad_result{};
        add_to(m.t.status[static_cast<std::size_t>(std::stoi(std::string(code)))], n.to_number<std::uint64_t>());
    }
    for (const auto& [kind, n] : obj(o, "errors")) {
        if (!plain_name(kind)) throw bad_result{};
        const auto count = n.to_number<std::uint64_t>();
        if (m.t.errors.size() >= 256 && !m.t.errors.contains(std::string(kind))) throw bad_result{};
        add_to(m.t.failed, count);
        add_to(m.t.errors[std::string(kind)], count);
    }
    add_to(m.sum.requests, requests);
    add_to(m.sum.ok, ok);
    add_to(m.sum.token_fetches, u64(o, "token_fetches"));
    add_to(m.sum.tokens_adopted, u64(o, "tokens_adopted"));
    add_to(m.sum.shared_store_errors, u64(o, "shared_store_errors"));
    add_to(m.sum.resends_after_401, u64(o, "retries_after_401"));
    m.sum.duration_s = std::max(m.sum.duration_s, real(o.at("duration_s")));
    add_distribution(m.t.latency, obj(o, "latency_distribution"), from_ms(obj(o, "latency_ms").at("max")));

    const auto& run = obj(o, "run");
    add_to(m.cfg.concurrency, u64(run, "concurrency"));
    add_to(m.cfg.threads, u64(run, "threads"));

    const auto& rows = arr(o, "timeline");
    if (rows.size() > 86'402) throw bad_result{};
    if (m.rows.size() < rows.size()) m.rows.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) absorb_row(m.rows[i], rows[i].as_object());

    const auto& story = obj(o, "token_story");
    for (const auto& f : arr(story, "fetches")) {
        const auto& fo = f.as_object();
        token_fetch_mark mark;
        mark.start_s = real(fo.at("start_s"));
        if (!fo.at("end_s").is_null()) mark.end_s = real(fo.at("end_s"));
        mark.ok = fo.at("ok").as_bool();
        mark.background = fo.at("background").as_bool();
        if (m.fetches.size() < token_story::max_marks) m.fetches.push_back(mark);
        else ++m.dropped;
    }
    for (const auto& s : arr(story, "storms_401")) {
        const auto& so = s.as_object();
        unauthorized_storm storm{real(so.at("start_s")), real(so.at("end_s")), u64(so, "count")};
        if (m.storms.size() < token_story::max_marks) m.storms.push_back(storm);
        else ++m.dropped;
    }
    add_to(m.dropped, u64(story, "dropped"));

    // Several targets: the same ones in every worker, merged one by one.
    if (const auto* targets = o.if_contains("targets")) {
        const auto& ts = targets->as_array();
        if (ts.size() != m.t.targets.size()) throw bad_result{};
        for (std::size_t k = 0; k < ts.size(); ++k) {
            const auto& to = ts[k].as_object();
            auto& tt = *m.t.targets[k];
            add_to(tt.done, u64(to, "requests"));
            add_to(tt.ok, u64(to, "ok"));
            add_to(tt.failed, u64(to, "errors"));
            add_distribution(tt.latency, obj(to, "latency_distribution"), from_ms(to.at("max_ms")));
        }
    } else if (!m.t.targets.empty()) {
        throw bad_result{};
    }
}

// What the first result says was run: its target, or its targets' names, weights and scopes.
std::vector<target> targets_of(const json::object& o) {
    std::vector<target> out;
    if (const auto* ts = o.if_contains("targets")) {
        const auto& list = ts->as_array();
        if (list.size() > 1000) throw bad_result{};
        for (const auto& v : list) {
            const auto& to = v.as_object();
            target t;
            // The name is "METHOD URL" with the URL redacted: kept as the URL, shown as is.
            const std::string name = printable(to.at("name").as_string());
            const auto space = name.find(' ');
            t.url = space == std::string::npos ? name : name.substr(space + 1);
            if (space != std::string::npos)
                if (auto m = boost::beast::http::string_to_verb(name.substr(0, space)); m != boost::beast::http::verb::unknown)
                    t.method = m;
            t.weight = static_cast<int>(std::min<std::uint64_t>(u64(to, "weight"), 1000));
            if (const auto* scope = to.if_contains("scope")) t.scope = printable(scope->as_string());
            out.push_back(std::move(t));
        }
    } else {
        target t;
        t.url = printable(obj(o, "run").at("to").as_string());
        out.push_back(std::move(t));
    }
    return out;
}

// Merges result `i` (of `n`) into `m` (made from the first), or says why it cannot.
std::optional<std::string> merge_one(std::unique_ptr<merged>& m, const config& cfg, std::size_t i, long long n,
                                     std::string_view text) {
    try {
        const auto v = json::parse(text);
        const auto& o = v.as_object();
        if (!m) {
            auto targets = targets_of(o);
            m = std::make_unique<merged>(targets.size() > 1 ? targets.size() : 1);
            m->cfg.json = cfg.json;
            m->cfg.redis_url = cfg.redis_url;
            m->cfg.workers = static_cast<int>(n);
            m->cfg.collect_id = cfg.collect_id;
            m->cfg.concurrency = m->cfg.threads = 0;
            m->cfg.targets = std::move(targets);
        }
        absorb(*m, o);
        return std::nullopt;
    } catch (...) { // bad_result, Boost.JSON's system_error and out_of_range, std::invalid_argument
        return "result " + std::to_string(i + 1) + " of run " + cfg.collect_id +
               " is not a tokenflight-load result (or not of the same targets)";
    }
}

} // namespace

std::shared_ptr<asio::ssl::context> redis_tls(const config& cfg) {
    if (!cfg.redis_url.starts_with("rediss://")) return nullptr;
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_default_verify_paths();
    if (!cfg.cacert.empty()) ctx->load_verify_file(cfg.cacert);
    return ctx;
}

std::optional<std::string> join_run(const config& cfg) {
    auto made = link_for(cfg);
    if (auto* why = std::get_if<std::string>(&made)) return *why;
    auto& link = *std::get<std::unique_ptr<redis_link>>(made);
    const auto ready = run_key(cfg.run_id, "ready"), workers = run_key(cfg.run_id, "workers");
    const auto n = std::to_string(cfg.workers);
    // The run's size first: a worker that disagrees is refused before it counts itself in.
    redis::pipeline size;
    size.add({"SET", workers, n, "NX", "EX", key_ttl_s}).add({"GET", workers});
    auto sized = link.exec(size);
    if (!sized) return failed("joining the run", sized.error());
    if ((*sized)[1].text != n)
        return "run " + cfg.run_id + " has " + printable((*sized)[1].text.substr(0, 20)) + " workers, not " + n;
    redis::pipeline join;
    join.add({"INCR", ready}).add({"EXPIRE", ready, key_ttl_s});
    auto joined = link.exec(join);
    if (!joined) return failed("joining the run", joined.error());
    const long long me = (*joined)[0].integer;
    if (me > cfg.workers) return "run " + cfg.run_id + " already had its " + n + " workers: a run ID is used once";
    const auto deadline = std::chrono::steady_clock::now() + cfg.run_wait;
    for (long long seen = me; seen < cfg.workers;) {
        if (std::chrono::steady_clock::now() >= deadline)
            return "waited " + std::to_string(cfg.run_wait.count()) + " s for the others: " + std::to_string(seen) +
                   " of " + n + " workers ready";
        std::this_thread::sleep_for(10ms);
        redis::pipeline look;
        look.add({"GET", ready});
        auto got = link.exec(look);
        if (!got) return failed("waiting for the others", got.error());
        seen = std::atoll((*got)[0].text.c_str());
    }
    return std::nullopt;
}

std::optional<std::string> push_result(const config& cfg, const std::string& result_json) {
    auto made = link_for(cfg);
    if (auto* why = std::get_if<std::string>(&made)) return *why;
    const auto results = run_key(cfg.run_id, "results");
    redis::pipeline push;
    push.add({"RPUSH", results, result_json}).add({"EXPIRE", results, key_ttl_s});
    auto pushed = std::get<std::unique_ptr<redis_link>>(made)->exec(push);
    if (!pushed) return failed("handing in the result", pushed.error());
    return std::nullopt;
}

int collect_run(const config& cfg) {
    const auto fail = [](const std::string& why) {
        std::cerr << "tokenflight-load: " << why << '\n';
        return exit_setup;
    };
    auto made = link_for(cfg);
    if (auto* why = std::get_if<std::string>(&made)) return fail(*why);
    auto& link = *std::get<std::unique_ptr<redis_link>>(made);
    const auto workers = run_key(cfg.collect_id, "workers"), results = run_key(cfg.collect_id, "results");
    const auto deadline = std::chrono::steady_clock::now() + cfg.run_wait;
    long long n = 0, have = 0;
    for (;;) {
        redis::pipeline look;
        look.add({"GET", workers}).add({"LLEN", results});
        auto got = link.exec(look);
        if (!got) return fail(failed("waiting for the results", got.error()));
        n = (*got)[0].is_nil() ? 0 : std::atoll((*got)[0].text.c_str());
        have = (*got)[1].integer;
        if (n < 0 || n > max_workers) return fail("run " + cfg.collect_id + " claims " + (*got)[0].text.substr(0, 20) + " workers");
        if (n > 0 && have >= n) break;
        if (std::chrono::steady_clock::now() >= deadline)
            return fail("waited " + std::to_string(cfg.run_wait.count()) + " s for run " + cfg.collect_id + ": " +
                        (n > 0 ? std::to_string(have) + " of " + std::to_string(n) + " results"
                               : std::string("no worker has joined it")));
        std::this_thread::sleep_for(100ms);
    }
    // One result at a time: read, merged, dropped.
    std::unique_ptr<merged> m;
    for (long long i = 0; i < n; ++i) {
        redis::pipeline one;
        one.add({"LINDEX", results, std::to_string(i)});
        auto got = link.exec(one);
        if (!got) return fail(failed("reading the results", got.error()));
        if (auto why = merge_one(m, cfg, static_cast<std::size_t>(i), n, (*got)[0].text)) return fail(*why);
    }
    auto& mr = *m;
    std::sort(mr.fetches.begin(), mr.fetches.end(), [](const auto& a, const auto& b) { return a.start_s < b.start_s; });
    std::sort(mr.storms.begin(), mr.storms.end(), [](const auto& a, const auto& b) { return a.start_s < b.start_s; });
    const run_report report(mr.cfg, mr.t, mr.sum, mr.rows, mr.fetches, mr.storms, mr.dropped);
    print_report(report);
    if (!cfg.timeline_file.empty())
        if (auto why = write_file(cfg.timeline_file, timeline_csv(report))) return fail(*why);
    if (!cfg.report_file.empty()) {
        if (auto why = write_file(cfg.report_file, html_report(report))) return fail(*why);
        (cfg.json ? std::cerr : std::cout) << "report: " << cfg.report_file << '\n';
    }
    return report.sum.ok == report.sum.requests ? 0 : exit_not_all_2xx;
}

} // namespace tokenflight::load
