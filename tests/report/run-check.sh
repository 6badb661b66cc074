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

[ -x "$chromium" ] || { echo "report check: chromium not found at $chromium (apt-get install chromium)" >&2; exit 1; }
# shellcheck source=../npm-work-dir.sh
. "$src/../npm-work-dir.sh"
npm_work_dir "report check" "$src" "$here" playwright-core package.json package-lock.json check-report.mjs
export CHROMIUM="$chromium"
exec node "$here/check-report.mjs" "$@"
