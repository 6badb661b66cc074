#!/usr/bin/env bash
# A distributed run on this machine: WORKERS tokenflight-load processes share one token through a
# redis-server of their own, start together, and hand their results to a collector that prints
# them merged (and writes the merged HTML report). The same as docs/fleet.md's Kubernetes
# Indexed Job, on 127.0.0.1, against tokenflight-load --demo-servers (2-second tokens).
# Usage: scripts/fleet-demo.sh [WORKERS (4)] [SECONDS (10)]
# Needs redis-server (Debian's redis-server); builds tokenflight-load into build/release (or
# $TOKENFLIGHT_BUILD_ROOT/release).
set -euo pipefail
workers=${1:-4}
seconds=${2:-10}
root=${TOKENFLIGHT_BUILD_ROOT:+$(realpath -m "$TOKENFLIGHT_BUILD_ROOT")}
cd "$(dirname "$0")/.."
dir=${root:-build}/release
scripts/bootstrap.sh
cmake --preset release -B "$dir" >/dev/null
cmake --build "$dir" --target tokenflight-load >/dev/null
load=$dir/tools/load/tokenflight-load

. scripts/local-redis.sh

# The authorization server and the API, in a process of their own.
"$load" --demo-servers --demo-token-lifetime 2 >"$work/servers" &
servers=$!
pids+=($servers)
wait_for test -s "$work/servers"
read -r token_url api_url client_id <"$work/servers"
export TOKENFLIGHT_TOKEN_URL=${token_url#token_url=} TOKENFLIGHT_CLIENT_ID=${client_id#client_id=}
export TOKENFLIGHT_CLIENT_SECRET=demo-client-secret TOKENFLIGHT_REDIS_URL=redis://127.0.0.1:$redis_port

run=demo-$$
echo "fleet-demo: $workers workers, run $run, Redis on 127.0.0.1:$redis_port, API ${api_url#api_url=}"
for i in $(seq "$workers"); do
    "$load" "${api_url#api_url=}" -H 'x-api-key: demo-api-key' -c 32 -t 1 -d "$seconds" \
        --run "$run" --workers "$workers" --json >"$work/worker-$i.json" &
    pids+=($!)
done
report=$dir/tokenflight-fleet-report.html
"$load" --collect "$run" --report "$report"
kill -TERM "$servers"
wait "$servers" || true
seen=$(tail -n 1 "$work/servers")
echo "fleet-demo: the authorization server saw ${seen%% *} for $workers workers over ${seconds}s of 2 s tokens"
