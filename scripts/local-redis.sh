# Sourced by scripts/fleet-demo.sh and benchmarks/fleet.sh: a redis-server of their own on a free
# 127.0.0.1 port (no persistence), a scratch folder $work, and a cleanup on exit that stops
# every process whose pid is added to the array $pids. Sets $redis_port; defines wait_for.
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --logfile /dev/null &
pids+=($!)
# wait_for CONDITION...: runs it every 50 ms until it holds; gives up after 10 s.
wait_for() {
    for _ in $(seq 200); do "$@" && return 0; sleep 0.05; done
    echo "gave up waiting for: $*" >&2
    exit 2
}
redis_up() { redis-cli -p "$redis_port" ping >/dev/null 2>&1; }
wait_for redis_up
