#!/usr/bin/env bash
# Builds the libFuzzer targets (the fuzz preset: clang-14, -fsanitize=fuzzer,address,undefined) and
# runs each on a copy of its seed corpus (fuzz/corpus/<target> is never written), after the inputs
# in fuzz/regressions/<target>/ (past findings, which must stay fixed).
#
#   scripts/fuzz.sh                  every target for 60 s: exploration, for people
#   scripts/fuzz.sh 300 http_response  one target for 5 minutes
#   scripts/fuzz.sh --runs 20000     what CI runs: replays seeds and regressions, then exactly 20000
#                                    runs with a fixed seed (FUZZ_SEED, default 1) from a fresh work
#                                    corpus. The same commit explores the same inputs on a fast or a
#                                    slow machine, so CI never passes here and fails elsewhere.
#
# Time-bounded runs explore differently on every machine: feed what they find back as regression
# inputs (fuzz/regressions/<target>/, with a line in its README), so that CI replays them.
#
# Prints one summary line per target and exits non-zero (libFuzzer's exit code) if any target
# crashed, timed out or ran out of memory; the input that did it is printed and kept under
# build/fuzz/artifacts/<target>/. Reproduce with: build/fuzz/fuzz/fuzz_<target> <that file>
# (see fuzz/README.md). Inputs the fuzzer found interesting accumulate in
# build/fuzz/corpus-work/<target>; delete that directory to start again from the seeds.
#
# Installs nothing, except clang-14 and its libFuzzer runtime when clang++-14 is missing: as root
# with apt-get, otherwise it prints the command and exits 1.
#
# With TOKENFLIGHT_BUILD_ROOT set, $TOKENFLIGHT_BUILD_ROOT/fuzz takes the place of build/fuzz.
set -euo pipefail
root=${TOKENFLIGHT_BUILD_ROOT:+$(realpath -m "$TOKENFLIGHT_BUILD_ROOT")}
cd "$(dirname "$0")/.."

runs=""
if [ "${1:-}" = "--runs" ]; then
    runs=${2:-}
    shift 2 || true
    seconds=0
else
    seconds=${1:-60}
    shift || true
fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || { [ -z "$runs" ] && [ "$seconds" -eq 0 ]; } ||
   { [ -n "$runs" ] && ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; }; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...] | scripts/fuzz.sh --runs N [TARGET...]" >&2
    exit 2
fi
all_targets=(token_response www_authenticate retry_after http_response end_to_end server_metadata redis_reply fleet_record
             http2_frames)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    if [ ! -d "fuzz/corpus/$t" ]; then
        echo "fuzz.sh: unknown target $t (known: ${all_targets[*]})" >&2
        exit 2
    fi
done

fuzzer_runtime_present() {
    compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-$(uname -m).a" >/dev/null
}
if ! command -v clang++-14 >/dev/null 2>&1 || ! fuzzer_runtime_present; then
    cmd="apt-get install -y clang-14 libclang-rt-14-dev"
    if [ "$(id -u)" -ne 0 ]; then
        echo "fuzz.sh needs clang-14 with its libFuzzer runtime; run: sudo apt-get update && sudo $cmd" >&2
        exit 1
    fi
    echo "fuzz.sh: apt-get update && $cmd" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    $cmd >/dev/null
fi

export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
build=${root:-build}/fuzz
# -B overrides the preset's build directory; the build preset's one target is named by hand.
cmake --preset fuzz -B "$build" >/dev/null
cmake --build "$build" --target fuzzers

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
    work="$build/corpus-work/$t"
    artifacts="$build/artifacts/$t"
    log="$build/logs/$t.log"
    if [ -n "$runs" ]; then
        work="$build/ci-work/$t" # fresh each time: what was found before must not change the path
        rm -rf "$work"
    fi
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    cp fuzz/corpus/"$t"/* "$work"/
    args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
    launcher=()
    if [ -n "$runs" ]; then
        args+=(-runs="$runs" -seed="${FUZZ_SEED:-1}")
        # Reproducible runs. Heap addresses feed hash tables (Asio's strand pool) and so coverage:
        # no address randomisation. Comparison tracing (-use_cmp) feeds the operands of compares
        # back as mutations, and those include addresses (which move with the environment's and
        # the paths' sizes and with other threads' allocations) and, in end_to_end, the wall
        # clock: off here. And libFuzzer re-reads its corpus directory every few seconds by
        # default (-reload), which inserts runs at moments that depend on the machine's speed:
        # off too. So two runs of a commit reach the same inputs in any directory (checked: same
        # cov/ft/corpus); exploration with comparison tracing is what time-bounded runs do.
        setarch "$(uname -m)" -R true 2>/dev/null && launcher=(setarch "$(uname -m)" -R)
        args+=(-use_cmp=0 -reload=0)
    else
        args+=(-max_total_time="$seconds")
        # FUZZ_SEED fixes libFuzzer's random seed; unset, every run explores differently.
        [ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")
    fi
    [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
    corpora=("$work")
    # Inputs of past findings run first (libFuzzer only reads corpus directories after the first).
    [ -d "fuzz/regressions/$t" ] && corpora+=("fuzz/regressions/$t")
    rc=0
    "${launcher[@]}" "$build/fuzz/fuzz_$t" "${args[@]}" "${corpora[@]}" >"$log" 2>&1 || rc=$?
    # The last status line: "#123 DONE cov: 456 ft: 789 corp: 12/345b ... exec/s: 678 rss: 90Mb".
    stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    done_runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$stats")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$stats")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$stats")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9a-zA-Z]+).*/\1/p' <<<"$stats")
    execs=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        printf '%-18s ok     runs=%s exec/s=%s cov=%s ft=%s corpus=%s\n' \
            "$t" "${done_runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    else
        crash=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)
        when="while running the corpus"
        [ -n "$done_runs" ] && when="after $done_runs runs"
        printf '%-18s FAILED exit=%s %s; input: %s; log: %s\n' "$t" "$rc" "$when" "${crash:-none saved}" "$log"
        grep -m 3 -E 'ERROR: |runtime error: |fuzz invariant broken' "$log" | sed 's/^/    /' || true
        [ "$status" -eq 0 ] && status=$rc
    fi
done
exit "$status"
