#!/usr/bin/env bash
# Builds tokenflight and runs its demo: an example that gets tokens from the in-process fake
# authorization server and calls the in-process fake API through a revocation.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
cmake --preset release >/dev/null
cmake --build --preset release --target get_token call_api
build/release/examples/get_token --demo
build/release/examples/call_api --demo
