#!/usr/bin/env bash
# Installs dependencies, configures, builds and runs the whole test suite with ctest.
#   scripts/test.sh            release build (the README's test command)
#   scripts/test.sh asan|tsan|debug
# Builds into build/<preset>, or into $TOKENFLIGHT_BUILD_ROOT/<preset> when that is set (for a
# read-only checkout, or to keep builds elsewhere).
set -euo pipefail
root=${TOKENFLIGHT_BUILD_ROOT:+$(realpath -m "$TOKENFLIGHT_BUILD_ROOT")}
cd "$(dirname "$0")/.."
preset=${1:-release}
dir=${root:-build}/$preset

scripts/bootstrap.sh
# -B overrides the preset's build directory; the test presets' options are passed by hand, since
# ctest --preset always tests the preset's own directory. The sanitizers' run-time options are
# properties of the tests themselves (tests/CMakeLists.txt).
cmake --preset "$preset" -B "$dir" >/dev/null
cmake --build "$dir"
ctest --test-dir "$dir" --output-on-failure --no-tests=error
