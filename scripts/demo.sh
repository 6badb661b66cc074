#!/usr/bin/env bash
# Builds tokenflight and runs its main job: tokenflight-load against in-process demo servers on
# 127.0.0.1 (2-second tokens, every token revoked half-way through the run). Writes the run's HTML
# report next to the build (build/release/tokenflight-demo-report.html) and prints its path.
# Extra arguments go to tokenflight-load, e.g.  scripts/demo.sh -d 10 -c 256 --json
# (a --report FILE among them replaces the default one).
# Builds into build/release, or $TOKENFLIGHT_BUILD_ROOT/release when that is set.
set -euo pipefail
root=${TOKENFLIGHT_BUILD_ROOT:+$(realpath -m "$TOKENFLIGHT_BUILD_ROOT")}
cd "$(dirname "$0")/.."
dir=${root:-build}/release

scripts/bootstrap.sh
cmake --preset release -B "$dir" >/dev/null
cmake --build "$dir" --target tokenflight-load
"$dir/tools/load/tokenflight-load" --demo --report "$dir/tokenflight-demo-report.html" "$@"
