#!/usr/bin/env bash
# Builds tokenflight and runs its main job: tokenflight-load against in-process demo servers on
# 127.0.0.1 (2-second tokens, every token revoked half-way through the run).
# Extra arguments go to tokenflight-load, e.g.  scripts/demo.sh -d 10 -c 256 --json
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
cmake --preset release >/dev/null
cmake --build --preset release --target tokenflight-load
build/release/tools/load/tokenflight-load --demo "$@"
