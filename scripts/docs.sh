#!/usr/bin/env bash
# Builds the API reference (HTML) from the public headers with doxygen, into
# ${TOKENFLIGHT_BUILD_ROOT:-build}/docs/html. Fails, after printing every warning, when a public
# name has no documentation or a doc comment is malformed (docs/Doxyfile: WARN_AS_ERROR).
#   scripts/docs.sh
set -euo pipefail
root=${TOKENFLIGHT_BUILD_ROOT:+$(realpath -m "$TOKENFLIGHT_BUILD_ROOT")}
cd "$(dirname "$0")/.."

if ! command -v doxygen >/dev/null 2>&1; then
    echo "docs.sh: doxygen is missing: apt-get install -y doxygen (or scripts/bootstrap.sh)" >&2
    exit 1
fi

out=$(realpath -m "${root:-build}/docs")
mkdir -p "$out"
rm -rf "$out/html"

# The version is the one project() declares.
version=$(sed -n 's/^project(tokenflight VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
repo=$(pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
TOKENFLIGHT_VERSION="$version" TOKENFLIGHT_DOCS_DIR="$out" doxygen docs/Doxyfile >"$log" 2>&1 || status=$?
# Paths in warnings are made relative to the repository, like a compiler's.
sed "s|^$repo/||" "$log" >&2
if [ "$status" -ne 0 ]; then
    echo "docs.sh: doxygen warnings (above) fail the API reference" >&2
    exit 1
fi
echo "API reference: $out/html/index.html"
