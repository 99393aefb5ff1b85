#!/usr/bin/env bash
# User-space instructions per frame on both ends (issue 13, target 7), from valgrind's
# callgrind: the KVM guests here expose no hardware counters to `perf stat`. Sends FILE
# --loop 10 and --loop 60 times to `recv --count N --quiet` (both under callgrind, on
# loopback) and prints (run of 60 - run of 10) / 50 for each end, so start-up is not counted.
# System calls are not counted (user space only).
#
# Usage: bench/cpu_per_frame.sh [--bin PATH] [FILE] [SEND ARGS...]
#   FILE defaults to ../shared/corpus/fallenleaf_1920x1080.jpg (290 KB, 1920x1080).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=lib/peers.sh
. "$repo/bench/lib/peers.sh"
bin=""
if [ "${1:-}" = --bin ]; then bin="$2"; shift 2; fi
file="${1:-$repo/../shared/corpus/fallenleaf_1920x1080.jpg}"
[ $# -gt 0 ] && shift
command -v valgrind >/dev/null || { echo "cpu_per_frame: SKIPPED: valgrind is not installed (apt-get install valgrind)"; exit 0; }
bench_workdir
bench_binary

# Instructions of one callgrind output file.
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}'; }

for n in 10 60; do
    port="$(free_port)"
    timeout -k 1 300 valgrind --tool=callgrind --callgrind-out-file="$work/recv-$n.out" \
        "$bin" recv --listen "127.0.0.1:$port" --count "$n" --quiet >/dev/null 2>"$work/recv-$n.err" &
    started+=("$!")
    sleep 3 # valgrind starts slowly
    timeout -k 1 300 valgrind --tool=callgrind --callgrind-out-file="$work/send-$n.out" \
        "$bin" send --to "127.0.0.1:$port" --loop "$n" "$@" "$file" >"$work/send-$n.err" 2>&1
    wait "${started[-1]}" || true
    grep -m1 "^sent" "$work/send-$n.err" >&2 || { cat "$work/send-$n.err" >&2; exit 1; }
done
for side in send recv; do
    a="$(total "$work/$side-10.out")"
    b="$(total "$work/$side-60.out")"
    printf '%s: %d user-space instructions per frame\n' "$side" "$(((b - a) / 50))"
done
