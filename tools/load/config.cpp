#include "config.hpp"

#include <tokenflight/http/header_syntax.hpp>
#include <tokenflight/http/proxy.hpp>
#include <tokenflight/http/url.hpp>
#include <tokenflight/discovery.hpp>
#include <tokenflight/token_endpoint.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tokenflight::load {

namespace {

template <class T>
std::optional<T> number(std::string_view s) {
    T v{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<http::verb> method_of(std::string_view m) {
    const auto v = boost::beast::http::string_to_verb(m);
    if (v == http::verb::unknown) return std::nullopt;
    return v;
}

} // namespace

std::string usage() {
    return R"(usage: tokenflight-load [options] URL
       tokenflight-load [options] --targets FILE
       tokenflight-load --demo [options]

Load-tests an OAuth 2.0 protected HTTP API: gets a client-credentials token, keeps it fresh,
and on a 401 refreshes it once for all requests in flight.

OAuth:
  --token-url URL            token endpoint (or TOKENFLIGHT_TOKEN_URL)
  --issuer URL               or: the authorization server's issuer; the token endpoint and the
                             client authentication come from its metadata (or TOKENFLIGHT_ISSUER)
  --client-id ID             client id (or TOKENFLIGHT_CLIENT_ID)
  --client-secret-file FILE  file holding the client secret (or TOKENFLIGHT_CLIENT_SECRET);
                             the secret is never accepted as a flag value
  --scope S                  space-separated scopes (or TOKENFLIGHT_SCOPE)
  --auth-method M            client authentication: basic (default), post, client_secret_jwt,
                             private_key_jwt (the default with --client-assertion-key),
                             tls_client_auth (the default with --client-cert and no secret),
                             self_signed_tls_client_auth
  --client-assertion-key FILE  PEM private key (RSA or EC P-256) signing a client assertion per
                             token request (private_key_jwt, RFC 7523); no client secret needed
  --client-assertion-alg ALG RS256, PS256 or ES256 (default: RS256 for RSA, ES256 for EC keys)
  --client-assertion-kid KID the assertion's kid header
  --client-assertion-aud AUD the assertion's audience (default: the token URL)
  --client-cert FILE         PEM client certificate (and chain) for mutual TLS (RFC 8705): presented
                             to the token endpoint and the API, so certificate-bound tokens work
  --client-key FILE          its PEM private key (unencrypted)
  --auth-scheme SCHEME|none  Authorization scheme (default: the token_type); none sends the raw token
  --dpop                     DPoP (RFC 9449): a P-256 key made for the run, a proof on every token
                             and API request, server nonces honoured; DPoP tokens sent as DPoP
Request:
  -H 'Name: value'           header on every request (repeatable)
  -X METHOD                  method (default GET)
  --data BODY                request body
  --targets FILE             several requests, in vegeta's targets format: 'METHOD URL' lines,
                             each followed by 'Name: value' header lines and an '@FILE' body
                             line, all optional; sent in turn (no URL, -X or --data then);
                             '# tokenflight-scope: S' in a target: its token has scope S
  --weights W1,W2,...        --targets: how many turns each target gets per cycle (default 1 each)
Load:
  -c N                       requests in flight (default 64)
  -n N | -d SECONDS          total requests, or duration (default -d 10)
  -R N | -R STAGES           arrival rate, N requests/s, or stages ramping it linearly from 0 to
                             each target in turn: 1000:30s,5000:60s,0:10s (a 0-second stage is a
                             step); the stages set the duration unless -d is given. Latency counts
                             from each request's scheduled send time (no coordinated omission)
  -t N                       event loops, as wrk's threads: N io_contexts, one thread each, each
                             with its own client and connections; -c, --max-connections and -R
                             are split over them (default: hardware threads, at most -c)
  --max-connections N        connections per origin, in total over the -t loops (default: -c;
                             with HTTP/2, one per loop)
  --http2                    HTTP/2 where the server picks it by ALPN (https); HTTP/1.1 otherwise
  --h2c                      also HTTP/2 over plain http, with prior knowledge (--demo included);
                             -c then counts streams in flight, over --max-connections connections
  --timeout SECONDS          per request, and for the first token (default 10)
  --cacert FILE              trust this CA file; --insecure turns TLS verification off
  --proxy URL                egress proxy http://[user:password@]host:port for every connection
                             ("none": direct); default HTTPS_PROXY / HTTP_PROXY / NO_PROXY
Fleet (several tokenflight-load processes, one token):
  --redis URL                share the token through Redis: redis://[[user]:password@]host[:port][/db]
                             or rediss://; one token request per refresh for all the workers using
                             it (or TOKENFLIGHT_REDIS_URL, which keeps a password out of ps)
  --redis-timeout SECONDS    each Redis step; slower, the worker fetches its own (default 0.05)
  --redis-lease SECONDS      how long the others wait for the worker fetching the token before one
                             takes over (default: --timeout + 2)
  --redis-key-file FILE      what the shared record's key is derived from (default: the client
                             secret; needed without one)
  --run ID --workers N       one of N workers of run ID (letters, digits, '.', '_', '-'): waits
                             until the N have their first token, starts with them, and hands its
                             result to the run in Redis at the end (still printing its own)
  --collect ID               with --redis, no URL: waits for the N results of run ID and prints
                             them merged, in the shapes of one run's (--json, --report, --timeline)
  --run-wait SECONDS         the longest a worker waits for the others, or --collect for the
                             results (default 600)
Benchmarking:
  --demo-token-server        get tokens from an in-process fake authorization server (load goes to URL)
  --no-token                 no token layer at all: only the -H headers (to measure the token layer)
Output:
  --json                     one JSON object on stdout at the end: the summary, the per-second
                             timeline, the latency distribution and the token story
  --timeline FILE            the per-second rows as CSV: requests, status classes, errors,
                             latency p50/p90/p99/max, token fetches, 401s, resends, connections
  --report FILE              a self-contained HTML report with charts (opens offline)
  --demo                     run against in-process demo servers on 127.0.0.1 (2 s tokens, a
                             revocation storm mid-run); no other flag needed
  --demo-servers             only --demo's servers, for workers in other processes (--run): prints
                             token_url=... api_url=... client_id=... (the secret is
                             demo-client-secret, the API wants 'x-api-key: demo-api-key'), serves
                             until SIGINT or SIGTERM (or -d), then prints token_requests=N
                             api_requests=N expired_tokens=N; no revocations
  --demo-token-lifetime S    --demo: token lifetime in whole seconds (default 2)
  --demo-revoke-every S      --demo: revoke every token every S seconds instead of once
Exit status: 0 when every request got a 2xx, 1 otherwise, 2 for usage or set-up errors.
)";
}

target url_target(const config& cfg) {
    target t;
    t.method = cfg.method;
    t.url = cfg.url;
    t.body = cfg.body;
    return t;
}

std::variant<config, usage_error> parse_command_line(const std::vector<std::string_view>& args,
                                                     const std::function<const char*(const char*)>& getenv,
                                                     unsigned hardware_threads) {
    config c;
    c.threads = static_cast<int>(hardware_threads ? hardware_threads : 1);
    bool threads_given = false;
    std::optional<std::string> secret_file;
    std::optional<std::string> key_file;
    std::optional<std::string> cert_file, cert_key_file;
    std::optional<std::string> targets_file, weights;
    bool method_given = false;
    std::optional<client_auth> auth;
    const auto env = [&](const char* name) -> std::string {
        const char* v = getenv(name);
        return v ? v : "";
    };
    c.creds.token_url = env("TOKENFLIGHT_TOKEN_URL");
    c.creds.issuer = env("TOKENFLIGHT_ISSUER");
    c.creds.client_id = env("TOKENFLIGHT_CLIENT_ID");
    c.creds.scope = env("TOKENFLIGHT_SCOPE");
    c.redis_url = env("TOKENFLIGHT_REDIS_URL");

    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view a = args[i];
        const auto value = [&]() -> std::optional<std::string_view> {
            if (i + 1 >= args.size()) return std::nullopt;
            return args[++i];
        };
        const auto missing = [&] { return usage_error{"option " + std::string(a) + " needs a value"}; };
        const auto bad = [&](std::string_view v, std::string_view what) {
            return usage_error{"bad value for " + std::string(a) + ": '" + std::string(v) + "' (" + std::string(what) + ")"};
        };

        if (a == "-h" || a == "--help") {
            c.help = true;
        } else if (a == "--json") {
            c.json = true;
        } else if (a == "--demo-servers") {
            c.demo_servers = true;
        } else if (a == "--demo") {
            c.demo = true;
        } else if (a == "--demo-token-server") {
            c.demo_token_server = true;
        } else if (a == "--no-token") {
            c.no_token = true;
        } else if (a == "--dpop") {
            c.dpop = true;
        } else if (a == "--insecure" || a == "-k") {
            c.insecure = true;
        } else if (a == "--http2") {
            c.http_version = c.http_version == http::http_version::h2c ? c.http_version : http::http_version::http2;
        } else if (a == "--h2c") {
            c.http_version = http::http_version::h2c;
        } else if (a == "--client-secret" || a.starts_with("--client-secret=")) {
            return usage_error{"the client secret is not accepted on the command line: "
                               "use TOKENFLIGHT_CLIENT_SECRET or --client-secret-file FILE"};
        } else if (a == "--token-url" || a == "--issuer" || a == "--client-id" || a == "--client-secret-file" || a == "--scope" ||
                   a == "--auth-method" || a == "--auth-scheme" || a == "-H" || a == "-X" || a == "--data" ||
                   a == "--client-assertion-key" || a == "--client-assertion-alg" ||
                   a == "--client-assertion-kid" || a == "--client-assertion-aud" ||
                   a == "--client-cert" || a == "--client-key" ||
                   a == "-c" || a == "-n" || a == "-d" || a == "-t" || a == "-R" || a == "--max-connections" ||
                   a == "--timeout" || a == "--cacert" || a == "--proxy" || a == "--demo-token-lifetime" || a == "--demo-revoke-every" ||
                   a == "--targets" || a == "--weights" || a == "--timeline" || a == "--report" ||
                   a == "--redis" || a == "--redis-timeout" || a == "--redis-lease" || a == "--redis-key-file" ||
                   a == "--run" || a == "--workers" || a == "--collect" || a == "--run-wait") {
            auto v = value();
            if (!v) return missing();
            if (a == "--token-url") {
                c.creds.token_url = *v;
            } else if (a == "--issuer") {
                c.creds.issuer = *v;
            } else if (a == "--client-id") {
                c.creds.client_id = *v;
            } else if (a == "--client-secret-file") {
                secret_file = std::string(*v);
            } else if (a == "--scope") {
                c.creds.scope = *v;
            } else if (a == "--auth-method") {
                if (*v == "basic") auth = client_auth::basic;
                else if (*v == "post") auth = client_auth::post;
                else if (*v == "client_secret_jwt") auth = client_auth::client_secret_jwt;
                else if (*v == "private_key_jwt") auth = client_auth::private_key_jwt;
                else if (*v == "tls_client_auth") auth = client_auth::tls_client_auth;
                else if (*v == "self_signed_tls_client_auth") auth = client_auth::self_signed_tls_client_auth;
                else return bad(*v, "basic, post, client_secret_jwt, private_key_jwt, tls_client_auth or "
                                    "self_signed_tls_client_auth");
            } else if (a == "--client-assertion-key") {
                key_file = std::string(*v);
            } else if (a == "--client-cert") {
                cert_file = std::string(*v);
            } else if (a == "--client-key") {
                cert_key_file = std::string(*v);
            } else if (a == "--client-assertion-alg") {
                auto alg = parse_jws_alg(*v);
                if (!alg || *alg == jws_alg::hs256) return bad(*v, "RS256, PS256 or ES256");
                c.creds.assertion.alg = alg;
            } else if (a == "--client-assertion-kid") {
                c.creds.assertion.kid = *v;
            } else if (a == "--client-assertion-aud") {
                c.creds.assertion.audience = *v;
            } else if (a == "--auth-scheme") {
                c.auth_scheme = *v == "none" ? std::string() : std::string(*v);
            } else if (a == "-H") {
                const auto colon = v->find(':');
                if (colon == std::string_view::npos || colon == 0) return bad(*v, "'Name: value'");
                auto val = v->substr(colon + 1);
                while (!val.empty() && (val.front() == ' ' || val.front() == '\t')) val.remove_prefix(1);
                const auto name = v->substr(0, colon);
                // Refused here with exit 2, and again where the request is serialised. The value
                // is not echoed: it may be an API key.
                std::string shown(name);
                strip_controls(shown);
                if (!http::is_token(name))
                    return usage_error{"bad header name for -H: '" + shown + "' (must be an RFC 9110 token)"};
                if (!http::is_field_value(val))
                    return usage_error{"bad value for -H " + shown + ": CR, LF, NUL and control characters are not allowed"};
                c.headers.emplace_back(std::string(name), std::string(val));
            } else if (a == "-X") {
                auto m = method_of(*v);
                if (!m) return bad(*v, "an HTTP method");
                c.method = *m;
                method_given = true;
            } else if (a == "--data") {
                c.body = *v;
                if (c.method == http::verb::get) c.method = http::verb::post;
                method_given = true;
            } else if (a == "--targets") {
                targets_file = std::string(*v);
            } else if (a == "--weights") {
                weights = std::string(*v);
            } else if (a == "--timeline") {
                c.timeline_file = *v;
            } else if (a == "--report") {
                c.report_file = *v;
            } else if (a == "-c") {
                auto n = number<int>(*v);
                if (!n || *n < 1 || *n > 1'000'000) return bad(*v, "1 to 1000000");
                c.concurrency = *n;
            } else if (a == "-n") {
                auto n = number<std::uint64_t>(*v);
                if (!n || *n < 1) return bad(*v, "a positive count");
                c.requests = *n;
            } else if (a == "-d") {
                auto n = number<double>(*v);
                if (!n || !(*n > 0) || *n > 86400) return bad(*v, "seconds, above 0");
                c.duration = std::chrono::milliseconds(static_cast<std::int64_t>(*n * 1000));
            } else if (a == "-t") {
                auto n = number<int>(*v);
                if (!n || *n < 1 || *n > 1024) return bad(*v, "1 to 1024");
                c.threads = *n;
                threads_given = true;
            } else if (a == "-R") {
                auto r = parse_rate(*v);
                if (auto* why = std::get_if<std::string>(&r)) return bad(*v, *why);
                c.rate = std::get<rate_schedule>(std::move(r));
            } else if (a == "--max-connections") {
                auto n = number<int>(*v);
                if (!n || *n < 1) return bad(*v, "a positive count");
                c.max_connections = *n;
            } else if (a == "--timeout") {
                auto n = number<double>(*v);
                if (!n || !(*n > 0)) return bad(*v, "seconds, above 0");
                c.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*n * 1000));
            } else if (a == "--cacert") {
                c.cacert = *v;
            } else if (a == "--proxy") {
                if (*v != "none")
                    if (auto p = http::parse_proxy_url(*v); !p)
                        return usage_error{"bad value for --proxy: " + p.error().message() + " (user info not shown)"};
                c.proxy = std::string(*v);
            } else if (a == "--redis") {
                c.redis_url = *v;
            } else if (a == "--redis-timeout" || a == "--redis-lease") {
                auto n = number<double>(*v);
                if (!n || !(*n > 0) || *n > 3600) return bad(*v, "seconds, above 0");
                const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(*n * 1000));
                if (ms.count() < 1) return bad(*v, "seconds, 0.001 at least");
                (a == "--redis-timeout" ? c.redis_timeout : c.redis_lease.emplace()) = ms;
            } else if (a == "--run" || a == "--collect") {
                if (v->empty() || v->size() > 64 || !std::all_of(v->begin(), v->end(), [](char ch) {
                        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
                    }))
                    return bad(*v, "1 to 64 letters, digits, '.', '_' or '-'");
                (a == "--run" ? c.run_id : c.collect_id) = *v;
            } else if (a == "--workers") {
                auto n = number<int>(*v);
                if (!n || *n < 1 || *n > 10'000) return bad(*v, "1 to 10000");
                c.workers = *n;
            } else if (a == "--run-wait") {
                auto n = number<int>(*v);
                if (!n || *n < 1 || *n > 86'400) return bad(*v, "whole seconds, 1 to 86400");
                c.run_wait = std::chrono::seconds(*n);
            } else if (a == "--redis-key-file") {
                auto s = load_secret_file(std::string(*v));
                if (!s) return usage_error{"cannot read the Redis key material from '" + std::string(*v) + "': " + s.error().message()};
                c.redis_key = std::move(*s);
            } else if (a == "--demo-token-lifetime") {
                auto n = number<int>(*v);
                if (!n || *n < 1) return bad(*v, "whole seconds, at least 1");
                c.demo_token_lifetime = std::chrono::seconds(*n);
            } else if (a == "--demo-revoke-every") {
                auto n = number<double>(*v);
                if (!n || !(*n > 0)) return bad(*v, "seconds, above 0");
                c.demo_revoke_every = std::chrono::milliseconds(static_cast<std::int64_t>(*n * 1000));
            }
        } else if (!a.empty() && a.front() == '-') {
            return usage_error{"unknown option " + std::string(a) + " (see --help)"};
        } else if (c.url.empty()) {
            c.url = a;
        } else {
            return usage_error{"more than one URL: '" + http::redact_url(c.url) + "' and '" + http::redact_url(a) + "'"};
        }
    }
    if (c.help) return c;
    c.creds.auth = auth.value_or(key_file ? client_auth::private_key_jwt : client_auth::basic);
    if (c.requests && c.duration) return usage_error{"-n and -d exclude each other: give one of them"};
    // Each of the -t event loops gets its share of -c and of --max-connections: at least one.
    // HTTP/1.1 carries one request per connection, HTTP/2 many: one connection per loop by default.
    const bool h2 = c.http_version != http::http_version::http1;
    const int connections = c.max_connections.value_or(h2 ? (threads_given ? c.threads : 1) : c.concurrency);
    if (!threads_given) {
        c.threads = std::min({c.threads, c.concurrency, connections});
    } else if (c.concurrency < c.threads) {
        return usage_error{"-t " + std::to_string(c.threads) + " needs -c " + std::to_string(c.threads) +
                           " or more: each thread's event loop keeps a share of -c in flight"};
    } else if (connections < c.threads) {
        return usage_error{"-t " + std::to_string(c.threads) + " needs --max-connections " +
                           std::to_string(c.threads) + " or more: each thread's event loop has its own connections"};
    }
    // Stages say how long the run lasts, unless -d or -n does.
    if (c.rate && c.rate->length() && !c.requests && !c.duration)
        c.duration = std::chrono::ceil<std::chrono::milliseconds>(*c.rate->length());
    if (weights && !targets_file) return usage_error{"--weights goes with --targets FILE"};
    if (!c.run_id.empty() || !c.collect_id.empty() || c.workers > 0) {
        if (c.redis_url.empty()) return usage_error{"--run and --collect meet in Redis: give --redis URL"};
        if (!c.collect_id.empty()) {
            if (!c.run_id.empty() || c.workers > 0) return usage_error{"--collect merges a run's results: no --run or --workers"};
            if (!c.url.empty() || targets_file) return usage_error{"--collect sends nothing: give no URL or --targets"};
            return c; // nothing else is needed
        }
        if (c.run_id.empty() || c.workers == 0) return usage_error{"--run ID and --workers N go together"};
    }
    if (!c.redis_url.empty()) {
        if (c.demo)
            return usage_error{"--redis shares one authorization server's token between workers; --demo runs "
                               "servers of its own in each process"};
        if (c.no_token || c.demo_token_server) return usage_error{"--redis shares tokens: not with --no-token or --demo-token-server"};
        if (c.dpop) return usage_error{"--redis cannot share DPoP tokens: each is bound to its process's key"};
        if (cert_file) return usage_error{"--redis cannot share certificate-bound tokens (--client-cert)"};
    }
    if (c.demo_servers) {
        if (!c.url.empty() || targets_file || c.demo) return usage_error{"--demo-servers only serves: no URL, --targets or --demo"};
        return c;
    }
    if (c.demo) {
        if (!c.url.empty()) return usage_error{"--demo runs against its own servers: give no URL"};
        if (targets_file) return usage_error{"--demo runs against its own servers: no --targets"};
        if (!c.requests && !c.duration) c.duration = std::chrono::seconds(6);
        return c;
    }
    if (!c.requests && !c.duration) c.duration = std::chrono::seconds(10);
    if (targets_file) {
        if (!c.url.empty()) return usage_error{"give a URL or --targets FILE, not both"};
        if (method_given) return usage_error{"with --targets, the method and body come from the file: no -X or --data"};
        auto loaded = load_targets(*targets_file);
        if (auto* e = std::get_if<targets_error>(&loaded)) return usage_error{e->message};
        c.targets = std::get<std::vector<target>>(std::move(loaded));
        if (weights)
            if (auto e = apply_weights(c.targets, *weights)) return usage_error{e->message};
    } else if (c.url.empty()) {
        return usage_error{"no URL to load (see --help, or try --demo)"};
    } else if (auto u = http::parse_url(c.url); !u) {
        return usage_error{"bad URL '" + http::redact_url(c.url) + "': " + u.error().message()};
    } else {
        c.targets = {url_target(c)};
    }
    if (c.no_token && c.demo_token_server) return usage_error{"--no-token and --demo-token-server exclude each other"};
    if (c.no_token && c.dpop) return usage_error{"--no-token and --dpop exclude each other: DPoP proves a token's key"};
    if (cert_file || cert_key_file) {
        if (!cert_file || !cert_key_file) return usage_error{"--client-cert FILE and --client-key FILE go together"};
        auto id = http::client_identity::load_pem_files(*cert_file, *cert_key_file);
        if (!id)
            return usage_error{"cannot use the client certificate '" + *cert_file + "' with the key '" +
                               *cert_key_file + "': " + id.error().message()};
        c.creds.certificate = std::move(*id); // with --no-token too: presented to the API
    }
    if (c.no_token || c.demo_token_server) return c; // no credentials needed
    if (!c.creds.token_url.empty() && !c.creds.issuer.empty())
        return usage_error{"--token-url and --issuer exclude each other: give one of them"};
    if (c.creds.token_url.empty() && c.creds.issuer.empty())
        return usage_error{"no token URL: give --token-url (or TOKENFLIGHT_TOKEN_URL) or --issuer"};
    if (!c.creds.issuer.empty()) {
        if (auto u = discovery_urls(c.creds.issuer); !u)
            return usage_error{"bad issuer '" + http::redact_url(c.creds.issuer) + "': " + u.error().message()};
        // Without a key, automatic: the method the server lists (Basic, then post, when both are).
        if (!auth && !key_file) c.creds.auth = client_auth::automatic;
    } else if (auto u = http::parse_url(c.creds.token_url); !u) {
        return usage_error{"bad token URL '" + http::redact_url(c.creds.token_url) + "': " + u.error().message()};
    }
    if (c.creds.client_id.empty()) return usage_error{"no client id: give --client-id or TOKENFLIGHT_CLIENT_ID"};
    if (key_file) {
        if (c.creds.auth != client_auth::private_key_jwt)
            return usage_error{"--client-assertion-key signs private_key_jwt assertions: not with --auth-method " +
                               std::string(to_string(c.creds.auth))};
        auto key = signing_key::load_pem_file(*key_file);
        if (!key) return usage_error{"cannot use the key in '" + *key_file + "': " + key.error().message()};
        c.creds.assertion.key = std::move(*key);
    }
    if (c.creds.auth == client_auth::private_key_jwt) {
        if (auto m = effective_client_auth(c.creds); !m)
            return usage_error{m.error() == errc::missing_credentials
                                   ? "private_key_jwt needs --client-assertion-key FILE"
                                   : "--client-assertion-alg " + std::string(to_string(*c.creds.assertion.alg)) +
                                         " does not fit the key in '" + *key_file + "'"};
        return c; // no client secret: the key authenticates
    }
    // A certificate without a secret authenticates by itself (tls_client_auth); with one, it
    // is presented anyway, so that the server may bind the tokens to it.
    const bool secret_given = secret_file || !env("TOKENFLIGHT_CLIENT_SECRET").empty();
    if (c.creds.certificate && !auth && !secret_given && c.creds.auth != client_auth::automatic)
        c.creds.auth = client_auth::tls_client_auth;
    const bool mutual_tls =
        c.creds.auth == client_auth::tls_client_auth || c.creds.auth == client_auth::self_signed_tls_client_auth;
    if (mutual_tls && !c.creds.certificate)
        return usage_error{std::string(to_string(c.creds.auth)) + " needs --client-cert FILE --client-key FILE"};
    if (mutual_tls || (c.creds.auth == client_auth::automatic && c.creds.certificate && !secret_given))
        return c; // no client secret: the certificate authenticates
    if (secret_file) {
        auto s = load_secret_file(*secret_file);
        if (!s) return usage_error{"cannot read the client secret from '" + *secret_file + "': " + s.error().message()};
        c.creds.client_secret = std::move(*s);
    } else if (auto s = env("TOKENFLIGHT_CLIENT_SECRET"); !s.empty()) {
        c.creds.client_secret = secret(s);
    } else {
        return usage_error{"no client secret: set TOKENFLIGHT_CLIENT_SECRET or give --client-secret-file FILE"};
    }
    return c;
}

} // namespace tokenflight::load
