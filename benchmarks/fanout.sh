#!/usr/bin/env bash
# Fan-out throughput: the same work from wrk and from tokenflight-load, side by side, against the
# same local nginx, in one run, in alternating rounds; medians and ratios of medians.
#
#   benchmarks/fanout.sh [SECONDS_PER_POINT] [ROUNDS] [OUT.json]
#                        (defaults: 5 s, 3 rounds, benchmarks/fanout.json)
#
# nginx-light (benchmarks/nginx.sh: 1 worker, access log off) answers 200 when an Authorization
# header is present and 401 otherwise, on 127.0.0.1, over http and over https (a self-signed
# certificate for IP 127.0.0.1 that the script makes with openssl). Points (client threads,
# connections):
#   t1-c1 t1-c64 t1-c256 t1-c1024   one thread, http
#   t2-c256                          two threads each (wrk -t2, tokenflight-load -t 2: two event loops)
#   tls-t1-c64                       one thread, https; tokenflight-load verifies the certificate (--cacert)
# At each point, three tools do the same work for SECONDS each:
#   wrk        wrk -tT -cC with the static header 'Authorization: Bearer static-token'
#   tf         tokenflight-load -t T -c C with the real token source (in-process token server)
#   tf-static  tokenflight-load -t T -c C --no-token with wrk's static header (token layer off)
# For ROUNDS rounds, every point runs wrk, tf, tf-static in that order in even rounds and in the
# reverse order in odd rounds, so that a machine drifting during the run favours none of them.
# Prints, per point, the median req/s of each tool and the ratios of the medians (tf/wrk,
# tf-static/wrk, and tf/tf-static: the token layer's cost), and writes them with every raw sample
# as JSON. A tokenflight-load run with a request that did not get a 2xx, or a wrk run with non-2xx
# responses or socket errors, stops the script: a benchmark with failures measures nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
out=${3:-benchmarks/fanout.json}
load=build/release/tools/load/tokenflight-load
[ -x "$load" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
command -v wrk >/dev/null || { echo "run scripts/bootstrap.sh --bench" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || true

nginx_tls=1
. benchmarks/nginx.sh

header='Authorization: Bearer static-token'
samples=$nginx_work/samples # removed with nginx's files on exit

# name, client threads, connections, scheme
points=(
    "t1-c1 1 1 http"
    "t1-c64 1 64 http"
    "t1-c256 1 256 http"
    "t1-c1024 1 1024 http"
    "t2-c256 2 256 http"
    "tls-t1-c64 1 64 https"
)

run_wrk() { # threads connections url
    local o
    o=$(wrk -t"$1" -c"$2" -d"${secs}s" -H "$header" "$3")
    if grep -qE '^ *(Non-2xx|Socket errors)' <<<"$o"; then
        echo "wrk -t$1 -c$2 $3 had failures:" >&2
        echo "$o" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ {print $2}' <<<"$o"
}
run_tf() { # threads connections url [flags...]
    local t=$1 c=$2 u=$3 o
    shift 3
    o=$("$load" -t "$t" -c "$c" -d "$secs" --json "$@" "$u") || true
    python3 -c '
import json, sys
try:
    j = json.loads(sys.argv[1])
except ValueError:
    sys.exit("tokenflight-load failed (see above)")
if j["ok"] != j["requests"]:
    sys.exit("tokenflight-load had failures: " + sys.argv[1])
print(j["rps"])' "$o" || exit 1
}
run_one() { # tool threads connections scheme
    local tool=$1 t=$2 c=$3 u=$url tls=()
    if [ "$4" = https ]; then
        u=$tls_url
        tls=(--cacert "$tls_cert")
    fi
    case $tool in
    wrk) run_wrk "$t" "$c" "$u" ;;
    tf) run_tf "$t" "$c" "$u" --demo-token-server "${tls[@]}" ;;
    tf-static) run_tf "$t" "$c" "$u" --no-token -H "$header" "${tls[@]}" ;;
    esac
}

for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then order=(wrk tf tf-static); else order=(tf-static tf wrk); fi
    echo "round $((r + 1))/$rounds: ${order[*]}" >&2
    for p in "${points[@]}"; do
        read -r name t c scheme <<<"$p"
        for tool in "${order[@]}"; do
            rps=$(run_one "$tool" "$t" "$c" "$scheme")
            echo "$name $t $c $scheme $tool $r $rps" >>"$samples"
        done
    done
done

python3 - "$samples" "$out" "$secs" "$rounds" <<'PY'
import json, statistics, sys
samples, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[4])
secs = float(sys.argv[3])
secs = int(secs) if secs.is_integer() else secs
points = {}
for line in open(samples):
    name, t, c, scheme, tool, r, rps = line.split()
    p = points.setdefault(name, {"point": name, "threads": int(t), "connections": int(c), "tls": scheme == "https",
                                 "samples": {"wrk": [], "tf": [], "tf-static": []}})
    p["samples"][tool].append(float(rps))
keys = {"wrk": "wrk_rps", "tf": "tokenflight_rps", "tf-static": "tokenflight_static_rps"}
print(f'{"point":<11} {"wrk":>10} {"tf":>10} {"tf-static":>10} {"tf/wrk":>7} {"static/wrk":>10} {"tf/static":>9}')
for p in points.values():
    for tool, key in keys.items():
        p[key] = round(statistics.median(p["samples"][tool]), 1)
    p["ratio_vs_wrk"] = round(p["tokenflight_rps"] / p["wrk_rps"], 3)
    p["static_ratio_vs_wrk"] = round(p["tokenflight_static_rps"] / p["wrk_rps"], 3)
    p["token_layer_ratio"] = round(p["tokenflight_rps"] / p["tokenflight_static_rps"], 3)
    print(f'{p["point"]:<11} {p["wrk_rps"]:>10.0f} {p["tokenflight_rps"]:>10.0f} {p["tokenflight_static_rps"]:>10.0f} '
          f'{p["ratio_vs_wrk"]:>7.3f} {p["static_ratio_vs_wrk"]:>10.3f} {p["token_layer_ratio"]:>9.3f}')
    p["samples"] = p.pop("samples")  # after the medians in the file
report = {"seconds_per_point": secs, "rounds": rounds, "statistic": "median", "points": list(points.values())}
json.dump(report, open(out, "w"), indent=1)
print(f"written: {out}")
PY
