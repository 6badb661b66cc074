#!/usr/bin/env bash
# Runs every benchmark once (about 7 minutes on the project's 2-core machine) and writes one JSON
# report, benchmarks/report.json (or $1):
#   token_cache  Google Benchmark: ns per get of a cached token (try_get / callback / awaitable,
#                1 and 2 threads, with and without a refresh in flight)
#   fanout       tokenflight-load vs wrk against the same local nginx (http and https, 1 and 2
#                threads), and the token layer's cost: medians of 3 alternating rounds
#   storm        401 storms of 1,000 / 10,000 / 50,000 requests in flight; peak RSS per request
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/report.json}

scripts/bootstrap.sh --bench
cmake --preset release -DTOKENFLIGHT_BUILD_BENCHMARKS=ON >/dev/null
cmake --build --preset release --target bench_token_cache bench_storm tokenflight-load

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== token cache hot path" >&2
build/release/benchmarks/bench_token_cache --benchmark_min_time=0.5 --benchmark_format=json \
    --benchmark_out="$tmp/token_cache.json" --benchmark_out_format=json >/dev/null
python3 - "$tmp/token_cache.json" >&2 <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(f'  {b["name"]:<34} {b["per_get"]*1e9:8.1f} ns/get')
PY

echo "== fan-out vs wrk" >&2
benchmarks/fanout.sh 5 3 "$tmp/fanout.json" >&2

echo "== 401 storms and memory" >&2
build/release/benchmarks/bench_storm 1000 10000 50000 | tee "$tmp/storm.jsonl" >&2

python3 - "$tmp" "$out" <<'PY'
import json, sys, platform, os, subprocess
tmp, out = sys.argv[1], sys.argv[2]
cache = json.load(open(f"{tmp}/token_cache.json"))
report = {
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "token_cache_ns_per_get": {b["name"]: round(b["per_get"] * 1e9, 1) for b in cache["benchmarks"]},
    "fanout": json.load(open(f"{tmp}/fanout.json")),
    "storm": [json.loads(l) for l in open(f"{tmp}/storm.jsonl") if l.strip()],
}
json.dump(report, open(out, "w"), indent=2)
print(f"written: {out}", file=sys.stderr)
PY
