#!/usr/bin/env bash
# HTTP/2 throughput: h2load (the standard HTTP/2 load tool, Debian's nghttp2-client) and
# tokenflight-load --http2, side by side against the same local nginx over TLS, in one run, in
# alternating rounds; with tokenflight-load over HTTP/1.1 at the same number of requests in
# flight. Medians and ratios of medians; then instructions per request (callgrind).
#
#   benchmarks/http2.sh [SECONDS_PER_POINT] [ROUNDS] [OUT.json]
#                       (defaults: 5 s, 3 rounds, benchmarks/http2.json)
#
# nginx-light (benchmarks/nginx.sh: 1 worker, access log off, HTTP/2 by ALPN on its https port)
# answers 200 "ok" when an Authorization header is present. Points:
#   c1-m100   1 connection x 100 streams, 1 client thread
#   c4-m256   4 connections x 256 streams, 2 client threads
# Tools at each point, SECONDS each:
#   h2load  h2load -tT -cC -mM with the static header 'authorization: Bearer static-token'
#   tf-h2   tokenflight-load --http2 -t T -c C*M --max-connections C, with the real token source
#           (an in-process token server), verifying nginx's certificate (--cacert)
#   tf-h1   tokenflight-load -t T -c C*M over HTTP/1.1 (a connection per request in flight), likewise
# A run with a request that did not get a 2xx stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
out=${3:-benchmarks/http2.json}
load=build/release/tools/load/tokenflight-load
[ -x "$load" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
command -v h2load >/dev/null || { echo "run scripts/bootstrap.sh (nghttp2-client)" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || true

nginx_tls=1
nginx_h2=1
. benchmarks/nginx.sh

samples=$nginx_work/samples # removed with nginx's files on exit

# name, client threads, connections, streams per connection
points=(
    "c1-m100 1 1 100"
    "c4-m256 2 4 256"
)

run_h2load() { # threads connections streams
    local o
    o=$(h2load -t"$1" -c"$2" -m"$3" -D"$secs" -H 'authorization: Bearer static-token' "$tls_url" 2>&1)
    python3 -c '
import re, sys
o = sys.argv[1]
m = re.search(r"finished in [0-9.]+m?s, ([0-9.]+) req/s", o)
r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", o)
s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", o)
if not (m and r and s) or int(r.group(5)) or int(r.group(6)) or int(s.group(3)) or int(s.group(4)) or "h2" not in o:
    sys.exit("h2load failed or had failures:\n" + o)
print(m.group(1))' "$o" || exit 1
}
run_tf() { # threads in-flight [flags...]
    local t=$1 c=$2 o
    shift 2
    o=$("$load" -t "$t" -c "$c" -d "$secs" --json --demo-token-server --cacert "$tls_cert" "$@" "$tls_url") || true
    python3 -c '
import json, sys
try:
    j = json.loads(sys.argv[1])
except ValueError:
    sys.exit("tokenflight-load failed (see above)")
if j["ok"] != j["requests"]:
    sys.exit("tokenflight-load had failures: " + sys.argv[1])
if sys.argv[2] == "h2" and j.get("protocol") != "HTTP/2":
    sys.exit("tokenflight-load --http2 did not speak HTTP/2: " + sys.argv[1])
print(j["rps"])' "$o" "${want:-h1}" || exit 1
}
run_one() { # tool threads connections streams
    case $1 in
    h2load) run_h2load "$2" "$3" "$4" ;;
    tf-h2) want=h2 run_tf "$2" $(($3 * $4)) --http2 --max-connections "$3" ;;
    tf-h1) want=h1 run_tf "$2" $(($3 * $4)) ;;
    esac
}

for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then order=(h2load tf-h2 tf-h1); else order=(tf-h1 tf-h2 h2load); fi
    echo "round $((r + 1))/$rounds: ${order[*]}" >&2
    for p in "${points[@]}"; do
        read -r name t c m <<<"$p"
        for tool in "${order[@]}"; do
            rps=$(run_one "$tool" "$t" "$c" "$m")
            echo "$name $t $c $m $tool $r $rps" >>"$samples"
        done
    done
done

# Instructions per request at c1-m100 (one thread each): callgrind counts the whole program for
# N and for 2N requests; the difference over N is one request's cost, start-up cancelled out.
# (Not tf-h1: its 100 TLS handshakes under valgrind swamp the difference; benchmarks/instructions.sh
# measures the HTTP/1.1 path.)
n=${TOKENFLIGHT_BENCH_N:-4000}
instructions() { # command... -> total instructions (Ir)
    local f
    f=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$f" "$@" >/dev/null 2>&1
    awk '/^summary:/ {print $2}' "$f"
    rm -f "$f"
}
per_request() { # name command-with-__N__...
    local name=$1 a b
    shift
    a=$(instructions "${@//__N__/$n}")
    b=$(instructions "${@//__N__/$((2 * n))}")
    echo "$name $(((b - a) / n))"
}
insn=$nginx_work/instructions
if command -v valgrind >/dev/null; then
    {
        per_request h2load h2load -t1 -c1 -m100 -n__N__ -H 'authorization: Bearer static-token' "$tls_url"
        per_request tf-h2 "$load" -t 1 -c 100 -n __N__ --http2 --max-connections 1 --demo-token-server --cacert "$tls_cert" --json "$tls_url"
    } >"$insn"
fi

python3 - "$samples" "$out" "$secs" "$rounds" "$insn" <<'PY'
import json, os, statistics, sys
samples, out, rounds, insn = sys.argv[1], sys.argv[2], int(sys.argv[4]), sys.argv[5]
secs = float(sys.argv[3])
secs = int(secs) if secs.is_integer() else secs
points = {}
for line in open(samples):
    name, t, c, m, tool, r, rps = line.split()
    p = points.setdefault(name, {"point": name, "threads": int(t), "connections": int(c), "streams": int(m),
                                 "samples": {"h2load": [], "tf-h2": [], "tf-h1": []}})
    p["samples"][tool].append(float(rps))
print(f'{"point":<9} {"h2load":>10} {"tf-h2":>10} {"tf-h1":>10} {"h2/h2load":>10} {"h2/h1":>7}')
for p in points.values():
    for tool in ("h2load", "tf-h2", "tf-h1"):
        p[tool.replace("-", "_") + "_rps"] = round(statistics.median(p["samples"][tool]), 1)
    p["ratio_vs_h2load"] = round(p["tf_h2_rps"] / p["h2load_rps"], 3)
    p["ratio_vs_http1"] = round(p["tf_h2_rps"] / p["tf_h1_rps"], 3)
    print(f'{p["point"]:<9} {p["h2load_rps"]:>10.0f} {p["tf_h2_rps"]:>10.0f} {p["tf_h1_rps"]:>10.0f} '
          f'{p["ratio_vs_h2load"]:>10.3f} {p["ratio_vs_http1"]:>7.3f}')
    p["samples"] = p.pop("samples")
report = {"seconds_per_point": secs, "rounds": rounds, "statistic": "median", "points": list(points.values())}
if os.path.exists(insn) and os.path.getsize(insn):
    report["instructions_per_request_c1_m100"] = {k: int(v) for k, v in (l.split() for l in open(insn))}
    print("instructions per request (c1-m100, callgrind):", report["instructions_per_request_c1_m100"])
json.dump(report, open(out, "w"), indent=1)
print(f"written: {out}")
PY
