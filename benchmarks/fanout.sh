#!/usr/bin/env bash
# Fan-out throughput: tokenflight-load next to wrk, against the same local nginx, in one run.
#
#   benchmarks/fanout.sh [SECONDS_PER_POINT] [OUT.json]      (default 5 s, benchmarks/fanout.json)
#
# nginx-light (1 worker, access log off) answers 200 when an Authorization header is present and
# 401 otherwise, on 127.0.0.1. For each connection count c in 1 16 64 256 1024, with one client
# thread each:
#   wrk        wrk -t1 -c c with a static Authorization header
#   tf         tokenflight-load -t 1 -c c with the real token source (in-process token server)
#   tf-static  tokenflight-load -t 1 -c c --no-token with the same static header (token layer off)
# Prints req/s and the ratios tf/wrk and tf/tf-static, and writes them as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
out=${2:-benchmarks/fanout.json}
load=build/release/tools/load/tokenflight-load
[ -x "$load" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
command -v wrk >/dev/null || { echo "run scripts/bootstrap.sh --bench" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || true

. benchmarks/nginx.sh

wrk_rps() {
    wrk -t1 -c"$1" -d"${secs}s" -H 'Authorization: Bearer static-token' "$url" |
        awk '/^Requests\/sec:/ {print $2}'
}
tf_rps() { # $1 = connections, rest = extra flags
    local c=$1
    shift
    "$load" -t 1 -c "$c" -d "$secs" --json "$@" "$url" |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["rps"] if j["ok"]==j["requests"] else "ERR")'
}

printf '%6s %12s %12s %12s %9s %9s\n' conns wrk_rps tf_rps tf_static tf/wrk tf/static
echo '{"seconds_per_point": '"$secs"', "points": [' >"$out"
sep=
for c in 1 16 64 256 1024; do
    w=$(wrk_rps "$c")
    t=$(tf_rps "$c" --demo-token-server)
    s=$(tf_rps "$c" --no-token -H 'Authorization: Bearer static-token')
    read -r r1 r2 < <(python3 -c "print(f'{$t/$w:.3f} {$t/$s:.3f}')")
    printf '%6s %12.0f %12.0f %12.0f %9s %9s\n' "$c" "$w" "$t" "$s" "$r1" "$r2"
    echo "$sep{\"connections\": $c, \"wrk_rps\": $w, \"tokenflight_rps\": $t, \"tokenflight_static_rps\": $s, \"ratio_vs_wrk\": $r1, \"token_layer_ratio\": $r2}" >>"$out"
    sep=,
done
echo ']}' >>"$out"
echo "written: $out"
