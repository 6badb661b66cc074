#!/usr/bin/env bash
# Token requests a fleet makes: 1, 8 and 32 tokenflight-load processes against one authorization
# server (tokenflight-load --demo-servers) over one token lifetime, each process on its own, then
# all sharing the token through a local redis-server (--redis). Prints one line per point:
# processes, token requests without the store, with it, and API requests sent with an expired
# token (both runs).
#
#   benchmarks/fleet.sh [TOKEN_LIFETIME_S]      (default 5; each run lasts one lifetime)
#
# Each process keeps 4 requests in flight at 100 requests/s: the point is the token traffic,
# not throughput. Needs redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
life=${1:-5}
load=build/release/tools/load/tokenflight-load
[ -x "$load" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || true

. scripts/local-redis.sh

# One point: PROCESSES [--redis URL]; prints "token_requests=N api_requests=N expired_tokens=N".
point() {
    local n=$1
    shift
    rm -f "$work/servers"
    "$load" --demo-servers --demo-token-lifetime "$life" >"$work/servers" &
    local servers=$!
    wait_for test -s "$work/servers"
    local token_url api_url client_id
    read -r token_url api_url client_id <"$work/servers"
    local workers=()
    for _ in $(seq "$n"); do
        TOKENFLIGHT_TOKEN_URL=${token_url#token_url=} TOKENFLIGHT_CLIENT_ID=${client_id#client_id=} \
        TOKENFLIGHT_CLIENT_SECRET=demo-client-secret \
            "$load" "${api_url#api_url=}" -H 'x-api-key: demo-api-key' -c 4 -t 1 -R 100 -d "$life" \
            --redis-timeout 1 "$@" --json >/dev/null &
        workers+=($!)
    done
    for w in "${workers[@]}"; do wait "$w" || { echo "a worker failed" >&2; exit 1; }; done
    kill -TERM "$servers"
    wait "$servers" || true
    tail -n 1 "$work/servers"
}

echo "processes  token requests alone  with --redis  expired tokens sent (alone, with)  ${life} s tokens, ${life} s runs"
for n in 1 8 32; do
    alone=$(point "$n")
    redis-cli -p "$redis_port" flushall >/dev/null # a fresh store for each point
    shared=$(point "$n" --redis "redis://127.0.0.1:$redis_port")
    field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
    printf '%9d  %20s  %12s  %s, %s\n' "$n" "$(field "$alone" token_requests)" "$(field "$shared" token_requests)" \
        "$(field "$alone" expired_tokens)" "$(field "$shared" expired_tokens)"
done
