#!/usr/bin/env bash
# The HTML report of a real run, in a real browser: tokenflight-load --demo writes it (tokens of
# 2 s, a revocation half-way, so the token story has fetches and a storm of 401s), headless
# Chromium loads it, every chart must have drawn marks, the page must log no error and fetch
# nothing. The screenshot stays in OUT_DIR as the run's artefact. Then the same report with its
# marks taken out must fail the check: the check can fail.
#   demo-report.sh TOKENFLIGHT_LOAD OUT_DIR
set -euo pipefail
load=$1
out=$2
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
rm -f "$out/report.html" "$out/report.png" "$out/timeline.csv"

# 12,000 requests at 3,000/s: four seconds, fixed counts.
"$load" --demo -n 12000 -R 3000 -c 32 -t 2 --report "$out/report.html" --timeline "$out/timeline.csv" | tee "$out/summary.txt"
grep -q "^report: $out/report.html\$" "$out/summary.txt"

# The token story on the time axes: the demo fetches tokens and revokes them once.
story=()
for chart in throughput latency tokens; do
    story+=(--expect-selector "svg[data-chart=$chart] line.fetch" --expect-selector "svg[data-chart=$chart] rect.storm")
done
"$here/run-check.sh" "$out/report.html" "$out/report.png" --expect-charts 6 "${story[@]}" \
    --expect-text "tokenflight-load report" --expect-text "12,000 requests" --expect-text "Token story" \
    --expect-text "401s: drained" --expect-text "x-api-key"
[ -s "$out/report.png" ]
# The demo API's key is a header value: never in the report.
if grep -q "demo-api-key" "$out/report.html"; then echo "the report shows the API key" >&2; exit 1; fi

# A run shorter than a second: one row, every chart still drawn.
"$load" --demo -n 1 -c 1 -t 1 --report "$out/one.html" > /dev/null
"$here/run-check.sh" "$out/one.html" "$out/one.png" --expect-charts 6 --expect-text "1 requests in"

sed 's/class="mark /class="unmarked /g' "$out/report.html" > "$out/unmarked.html"
if "$here/run-check.sh" "$out/unmarked.html" "$out/unmarked.png" --expect-charts 6 > "$out/unmarked.log" 2>&1; then
    echo "a report without marks passed the check" >&2
    exit 1
fi
grep -q "has no mark" "$out/unmarked.log"
echo "demo-report: OK, screenshot $out/report.png"
