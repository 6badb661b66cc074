#!/usr/bin/env bash
# Checks that a self-contained HTML report renders in headless Chromium (check-report.mjs):
#   run-check.sh REPORT.html SCREENSHOT.png [--expect-charts N] [--expect-text STRING]...
# Installs the npm dependency (playwright-core, which downloads no browser) on first use, into
# TOKENFLIGHT_REPORT_WORK_DIR when that is set (the build directory: ctest sets it, so a
# read-only checkout works), else next to this script. Uses Debian's /usr/bin/chromium, or
# $CHROMIUM. Fails with a clear message when node, npm or chromium is missing.
# Exit: 0 rendered, 1 a check failed, 2 usage error.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
here=${TOKENFLIGHT_REPORT_WORK_DIR:-$src}
chromium=${CHROMIUM:-/usr/bin/chromium}

command -v node >/dev/null || { echo "report check: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
[ -x "$chromium" ] || { echo "report check: chromium not found at $chromium (apt-get install chromium)" >&2; exit 1; }
if [ "$here" != "$src" ]; then
    # The checker and its locked dependency, copied where node_modules may be written.
    mkdir -p "$here"
    for f in package.json package-lock.json check-report.mjs; do
        cmp -s "$src/$f" "$here/$f" || cp "$src/$f" "$here/$f"
    done
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
    command -v npm >/dev/null || { echo "report check: npm is not installed (apt-get install npm)" >&2; exit 1; }
    # Serialised: several test runs may share this directory.
    (flock 9; [ -d "$here/node_modules/playwright-core" ] ||
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)) 9>"$here/.npm-install.lock" ||
        { echo "report check: npm ci failed in $here" >&2; exit 1; }
fi
export CHROMIUM="$chromium"
exec node "$here/check-report.mjs" "$@"
