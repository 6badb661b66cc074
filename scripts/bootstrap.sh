#!/usr/bin/env bash
# Installs what tokenflight needs to build and test, from Debian bookworm packages only.
# Idempotent: installs only what is missing. As root it runs apt-get; otherwise it prints the
# exact command and exits 1.
#
#   scripts/bootstrap.sh            build + test dependencies (chromium and tmux for the load
#                                   tool's report and live-panel tests, hiredis and redis-server
#                                   for the shared token store's), and doxygen for scripts/docs.sh
#   scripts/bootstrap.sh --bench    also nginx-light and wrk for the benchmarks
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config ccache
          libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
          libssl-dev doctest-dev libbenchmark-dev doxygen tinyproxy
          chromium tmux libhiredis-dev redis-server redis-tools libnghttp2-dev
          nghttp2-client)
for arg in "$@"; do
    case "$arg" in
        --bench) packages+=(nginx-light wrk) ;;
        *) echo "bootstrap.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

# The real-server tests run oidc-provider on Node.js; the machine image normally brings Node 20.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "tokenflight needs these packages: ${missing[*]}" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
