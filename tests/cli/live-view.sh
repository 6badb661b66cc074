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

# A 6-second demo run (a panel every second) in a 120x40 pane; the shell stays after it so the pane can be read.
tmx new-session -d -s load -x 120 -y 40 "'$load' --demo -d 6 -c 16 -t 1; echo EXIT=\$?; sleep 60"
# The panel must show up before the run ends, and be redrawn (its elapsed time changing) with
# one copy on the screen: what decides is the run's order of events, not a clock.
elapsed() { grep -o 'elapsed *[0-9.]*s' "$work/pane.txt" | head -1; }
wait_for "last 1s\|EXIT=" 30 || fail "neither a panel nor the end within 30 s"
grep -q "last 1s" "$work/pane.txt" || fail "the run ended without a live panel"
grep -q "req/s" "$work/pane.txt" || fail "the panel shows no request rate"
grep -q "tokens .* fetched" "$work/pane.txt" || fail "the panel shows no token count"
first=$(elapsed)
redrawn=
for ((i = 0; i < 300; i++)); do
    capture
    grep -q "EXIT=" "$work/pane.txt" && break
    [ "$(grep -c 'last 1s' "$work/pane.txt")" -eq 1 ] || fail "not exactly one panel on the screen"
    if [ "$(elapsed)" != "$first" ]; then redrawn=1; break; fi
    sleep 0.1
done
[ -n "$redrawn" ] || fail "the panel was not redrawn before the run ended ($first)"

wait_for "EXIT=" 60 || fail "the run did not end within 60 s"
grep -q "EXIT=0" "$work/pane.txt" || fail "the run failed"
grep -q "last 1s" "$work/pane.txt" && fail "the panel was left on the screen"
[ "$(grep -c 'requests in ' "$work/pane.txt")" -eq 1 ] || fail "not exactly one summary"
grep -q "tokens .* fetched, .* resent after a 401" "$work/pane.txt" || fail "no token line in the summary"

# The summary to a file, the panel to the terminal: the last panel stays on the screen.
tmx kill-session -t load
tmx new-session -d -s load -x 120 -y 40 "'$load' --demo -d 2 -c 4 -t 1 > '$work/summary.txt'; echo EXIT=\$?; sleep 60"
wait_for "EXIT=" 60 || fail "the run with its summary in a file did not end within 60 s"
grep -q "last 1s" "$work/pane.txt" || fail "the panel was erased though the summary went to a file"
grep -q "requests in " "$work/pane.txt" && fail "the summary reached the terminal"
grep -q "requests in " "$work/summary.txt" || fail "no summary in the file"

# Not a terminal: no panel, no escape sequence, only the summary.
"$load" --demo -d 2 -c 4 -t 1 > "$work/out.txt" 2> "$work/err.txt"
if grep -q $'\x1b' "$work/out.txt" "$work/err.txt"; then fail "escape sequences without a terminal"; fi
grep -q "last 1s" "$work/out.txt" "$work/err.txt" && fail "a panel without a terminal"
grep -q "requests in " "$work/out.txt" || fail "no summary without a terminal"
echo "live-view: OK"
