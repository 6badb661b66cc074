#!/usr/bin/env bash
# Soak run: tokenflight-load against the in-process demo servers on 127.0.0.1 with 1-second
# tokens and every token revoked every 10 s, at 64 requests in flight.
#   scripts/soak.sh [SECONDS]     default 300, at most 600
# Reports requests, failures (goal 0), token requests against the expected number, and the
# process's RSS at the start and at the end (goal: flat). Exits 1 when a request failed or RSS grew
# by more than 20%.
# Builds into build/release, or $TOKENFLIGHT_BUILD_ROOT/release when that is set.
set -euo pipefail
root=${TOKENFLIGHT_BUILD_ROOT:+$(realpath -m "$TOKENFLIGHT_BUILD_ROOT")}
cd "$(dirname "$0")/.."
secs=${1:-300}
[ "$secs" -ge 10 ] && [ "$secs" -le 600 ] || { echo "soak.sh: SECONDS must be 10..600" >&2; exit 2; }

dir=${root:-build}/release
load=$dir/tools/load/tokenflight-load
if [ ! -x "$load" ]; then
    scripts/bootstrap.sh
    cmake --preset release -B "$dir" >/dev/null
    cmake --build "$dir" --target tokenflight-load
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$load" --demo -d "$secs" -c 64 --demo-token-lifetime 1 --demo-revoke-every 10 --json >"$out" &
pid=$!
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; }
sleep 5
rss_start=$(rss)
rss_last=$rss_start
while kill -0 "$pid" 2>/dev/null; do
    r=$(rss)
    [ "$r" -gt 0 ] && rss_last=$r
    sleep 2
done
wait "$pid" || true

python3 - "$out" "$secs" "$rss_start" "$rss_last" <<'PY'
import json, sys
report, secs, rss_start, rss_end = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
failures = report["requests"] - report["ok"]
# one proactive refresh per (lifetime - refresh_ahead) = 1 s - 0.2 s, plus one per revocation
expected = secs / 0.8 + secs // 10
growth = (rss_end - rss_start) / rss_start if rss_start else 0.0
print(f"soak {secs} s: {report['requests']} requests ({report['rps']:.0f}/s), {failures} failures, "
      f"{report['retries_after_401']} resent after 401")
print(f"token requests: {report['token_fetches']} (expected about {expected:.0f})")
print(f"RSS: {rss_start / 1024:.1f} MiB after 5 s, {rss_end / 1024:.1f} MiB at the end ({growth:+.1%})")
print(json.dumps({"seconds": secs, "requests": report["requests"], "failures": failures,
                  "token_fetches": report["token_fetches"], "expected_token_fetches": round(expected),
                  "rss_start_kib": rss_start, "rss_end_kib": rss_end}))
sys.exit(0 if failures == 0 and growth <= 0.20 else 1)
PY
