#!/usr/bin/env bash
# What DPoP costs a fan-out: tokenflight-load with and without --dpop, side by side against the
# same local nginx (benchmarks/nginx.sh), in one run, in alternating rounds; medians and the
# ratio of the medians (with/without).
#
#   benchmarks/dpop.sh [SECONDS_PER_POINT] [ROUNDS]      (defaults: 5 s, 3 rounds)
#
# Tokens come from the in-process token server (--demo-token-server; DPoP-bound with --dpop);
# nginx answers 200 to any Authorization, so the run measures the client side: with --dpop each
# request carries a fresh proof (one P-256 ECDSA signature, claims with ath), without it none.
# Points (threads, requests in flight): t1-c64 and t2-c256, over http. A run with a request that
# did not get a 2xx stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
load=build/release/tools/load/tokenflight-load
[ -x "$load" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || true
. benchmarks/nginx.sh
samples=$nginx_work/samples

run() { # threads connections [flags...]
    local t=$1 c=$2 o
    shift 2
    o=$("$load" -t "$t" -c "$c" -d "$secs" --json --demo-token-server "$@" "$url") || true
    python3 -c '
import json, sys
j = json.loads(sys.argv[1])
if j["ok"] != j["requests"]:
    sys.exit("tokenflight-load had failures: " + sys.argv[1])
print(j["rps"])' "$o"
}

for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then order=(bearer dpop); else order=(dpop bearer); fi
    for p in "t1-c64 1 64" "t2-c256 2 256"; do
        read -r name t c <<<"$p"
        for mode in "${order[@]}"; do
            flags=()
            [ "$mode" = dpop ] && flags=(--dpop)
            echo "$name $mode $(run "$t" "$c" "${flags[@]}")" >>"$samples"
        done
    done
done

python3 - "$samples" <<'PY'
import statistics, sys
points = {}
for line in open(sys.argv[1]):
    name, mode, rps = line.split()
    points.setdefault(name, {"bearer": [], "dpop": []})[mode].append(float(rps))
print(f'{"point":<8} {"bearer":>10} {"dpop":>10} {"dpop/bearer":>11}')
for name, s in points.items():
    b, d = statistics.median(s["bearer"]), statistics.median(s["dpop"])
    print(f'{name:<8} {b:>10.0f} {d:>10.0f} {d / b:>11.3f}')
PY
