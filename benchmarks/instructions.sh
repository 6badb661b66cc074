#!/usr/bin/env bash
# User-space instructions and heap allocations per request on tokenflight's request paths,
# against a local nginx (benchmarks/nginx.sh), with one client thread and 64 requests in flight.
#
#   benchmarks/instructions.sh [N]          (default N = 5000)
#
# Instructions: callgrind counts the whole program for N and for 2N requests; the difference
# divided by N is the cost of one request, start-up and warm-up cancelled out. Allocations: the
# counting operator new of bench_request_path, over N requests after a warm-up. Paths:
#   load-static  tokenflight-load --no-token -H 'Authorization: Bearer static' (token layer off)
#   load-token   tokenflight-load --demo-token-server (the real token source, in-process server)
#   brief / prepared / get / pool   bench_request_path's modes (see benchmarks/request_path.cpp)
# Allocations of tokenflight-load itself: benchmarks/count_allocations.c, preloaded, counts every
# heap allocation of the process; runs of N and 2N requests give the count per request.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
load=build/release/tools/load/tokenflight-load
bench=build/release/benchmarks/bench_request_path
[ -x "$load" ] && [ -x "$bench" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "apt-get install valgrind" >&2; exit 2; }
. benchmarks/nginx.sh

instructions() { # command... -> total instructions (Ir) of the run
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
    awk '/^summary:/ {print $2}' "$out"
    rm -f "$out"
}
per_request() { # name, measure (a function: command... -> a total), digits, command with __N__
    # (measure at 2N - measure at N) / N: start-up and warm-up cancel out.
    local name=$1 measure=$2 digits=$3
    shift 3
    local a b
    a=$($measure "${@//__N__/$n}")
    b=$($measure "${@//__N__/$((2 * n))}")
    python3 -c "v = ($b - $a) / $n; print('$name', round(v) if $digits == 0 else round(v, $digits))"
}

echo "path instructions_per_request"
per_request load-static instructions 0 "$load" -t 1 -c 64 -n __N__ --no-token -H 'Authorization: Bearer static' --json "$url"
per_request load-token instructions 0 "$load" -t 1 -c 64 -n __N__ --demo-token-server --json "$url"
for mode in brief prepared get pool; do
    per_request "$mode" instructions 0 "$bench" "$mode" "$url" __N__
done
echo
echo "path allocations"
for mode in brief prepared get pool; do
    "$bench" "$mode" "$url" "$n"
done
counter=build/count_allocations.so
cc -O2 -shared -fPIC -o "$counter" benchmarks/count_allocations.c
allocations() { # command... -> allocations of the whole run
    LD_PRELOAD="$PWD/$counter" "$@" 2>&1 >/dev/null | awk '/^ALLOCATIONS/ {print $2}'
}
echo
echo "tokenflight-load allocations_per_request"
per_request load-static allocations 3 "$load" -t 1 -c 64 -n __N__ --no-token -H 'Authorization: Bearer static' --json "$url"
per_request load-token allocations 3 "$load" -t 1 -c 64 -n __N__ --demo-token-server --json "$url"
per_request load-static-t2 allocations 3 "$load" -t 2 -c 64 -n __N__ --no-token -H 'Authorization: Bearer static' --json "$url"
