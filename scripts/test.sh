#!/usr/bin/env bash
# Installs dependencies, configures, builds and runs the whole test suite with ctest.
#   scripts/test.sh            release build (the README's test command)
#   scripts/test.sh asan|tsan|debug
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}

scripts/bootstrap.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
