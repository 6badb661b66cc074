#!/usr/bin/env bash
# tokenflight-load's live panel, on a real terminal: tmux runs the tool in a pane; while the run
# goes on the pane shows the panel (redrawn in place: one copy of it), and when it ends the panel
# is gone and the summary is there, once. Without a terminal, nothing but the summary.
#   live-view.sh TOKENFLIGHT_LOAD WORK_DIR
# Every wait is bounded; the tmux server is private to this run (its own socket) and killed at
# the end.
set -euo pipefail
load=$1
work=$2
mkdir -p "$work"
sock="$work/tmux.sock"
tmx() { tmux -S "$sock" "$@"; }
cleanup() { tmx kill-server 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "live-view: $*" >&2; echo "--- pane ---" >&2; cat "$work/pane.txt" >&2 || true; exit 1; }

capture() { tmx capture-pane -p -t load > "$work/pane.txt"; }
# Polls the pane every 0.1 s, up to $2 seconds, until it matches the pattern $1.
wait_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        capture
        grep -q -- "$1" "$work/pane.txt" && return 0
        sleep 0.1
    done
    return 1
}

# A 6-second demo run in a 120x40 pane; the shell stays after it so the pane can be read.
tmx new-session -d -s load -x 120 -y 40 "'$load' --demo -d 6 -c 16 -t 1; echo EXIT=\$?; sleep 60"
wait_for "last 1s" 5 || fail "no live panel within 5 s"
grep -q "req/s" "$work/pane.txt" || fail "the panel shows no request rate"
grep -q "tokens .* fetched" "$work/pane.txt" || fail "the panel shows no token count"
sleep 1.2 # at least one redraw
capture
[ "$(grep -c 'last 1s' "$work/pane.txt")" -eq 1 ] || fail "the panel was not redrawn in place"

wait_for "EXIT=" 30 || fail "the run did not end within 30 s"
grep -q "EXIT=0" "$work/pane.txt" || fail "the run failed"
grep -q "last 1s" "$work/pane.txt" && fail "the panel was left on the screen"
[ "$(grep -c 'requests in ' "$work/pane.txt")" -eq 1 ] || fail "not exactly one summary"
grep -q "tokens .* fetched, .* resent after a 401" "$work/pane.txt" || fail "no token line in the summary"

# Not a terminal: no panel, no escape sequence, only the summary.
"$load" --demo -d 2 -c 4 -t 1 > "$work/out.txt" 2> "$work/err.txt"
if grep -q $'\x1b' "$work/out.txt" "$work/err.txt"; then fail "escape sequences without a terminal"; fi
grep -q "last 1s" "$work/out.txt" "$work/err.txt" && fail "a panel without a terminal"
grep -q "requests in " "$work/out.txt" || fail "no summary without a terminal"
echo "live-view: OK"
