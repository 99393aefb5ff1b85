#!/usr/bin/env bash
# Goodput and frame latency over an impaired loopback link (`pixgram impair`), at 0, 1, 5 and
# 10% random loss each way with 10 ms one-way delay (20 ms RTT; no jitter: the original
# scripts' format cannot survive reordering at all, and the point is to compare under loss):
#
#   reliable  pixgram send (default mode) of the corpus JPEGs up to 500 KB, --loop 8
#   live      pixgram send --mode live --fps 30 --fec 10, same frames, --loop 12
#   seed      the original scripts' stop-and-wait approach: pixgram send --compat seed to
#             pixgram recv --compat seed (8-byte length, 1,024-byte chunks, reply per image),
#             --loop 2, moving on after 0.3 s without a reply (the original client would wait
#             forever on the first lost chunk; this is its best case); it gives up after 3
#             images in a row without a reply, counted as 3 frames sent, 0 acknowledged
#
# Goodput is the sender's acknowledged MB/s (first send to last verdict); latency is from
# handing a frame to the sender to its acknowledgement (p50, p99), as the sender reports them.
# "whole" is the share of frames acknowledged. Medians over --reps runs (seeds 1..reps).
#
# Usage: bench/lossy.sh [--reps R] [--loss "0 1 5 10"] [--out DIR]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=3
losses="0 1 5 10"
out="$repo/target/bench-lossy"
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --loss) losses="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

(cd "$repo" && cargo build --release -q -p pixgram-cli)
bin="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
images=()
while IFS= read -r f; do images+=("$f"); done < <(find "$repo/../shared/corpus" -maxdepth 1 \
    -name '*.jpg' -size -500k 2>/dev/null | sort)
[ ${#images[@]} -gt 0 ] || { echo "no corpus images under ../shared/corpus" >&2; exit 2; }
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts `pixgram ARGS...` in the background and echoes the address from its "listening on".
start() {
    local log="$work/$1.err"; shift
    "$bin" "$@" >/dev/null 2>"$log" &
    pids+=($!)
    for _ in $(seq 100); do
        local a
        a="$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -1)"
        [ -n "$a" ] && { echo "$a"; return 0; }
        sleep 0.05
    done
    echo "did not start: $*" >&2; cat "$log" >&2; return 1
}
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    pids=()
}

results="$out/results.tsv"
printf 'mode\tloss\tseed\tframes\tacked\tMBps\tp50_ms\tp99_ms\n' >"$results"
for loss in $losses; do
    for seed in $(seq "$reps"); do
        for mode in reliable live seed; do
            compat=()
            [ "$mode" = seed ] && compat=(--compat seed)
            rx="$(start recv recv --listen 127.0.0.1:0 --quiet "${compat[@]}")"
            relay="$(start relay impair --listen 127.0.0.1:0 --to "$rx" --loss "$loss" \
                --delay 10 --seed "$seed")"
            case "$mode" in
            reliable) args=(--loop 8 --timeout 10) ;;
            live) args=(--mode live --fps 30 --fec 10 --loop 12) ;;
            seed) args=(--compat seed --loop 2 --timeout 0.3) ;;
            esac
            timeout 120 "$bin" send --to "$relay" "${args[@]}" "${images[@]}" 2>"$work/send.err" || true
            stop_all
            python3 - "$mode" "$loss" "$seed" "$work/send.err" >>"$results" <<'EOF'
import re, sys
mode, loss, seed, path = sys.argv[1:5]
text = open(path).read()
m = re.search(r"sent (\d+) frames, [\d.]+ MB in [\d.]+ s: [\d.]+ frames/s, ([\d.]+) MB/s; acked (\d+), "
              r"(?:lost|not acknowledged) (\d+); RTT (?:p50 ([\d.]+) ms p99 ([\d.]+) ms|n/a)"
              r"(?:; latency p50 ([\d.]+) ms p99 ([\d.]+) ms)?", text)
if not m:
    # `send --compat seed` gives up after 3 unanswered images in a row with none answered.
    gave_up = re.search(r"to (\d+) images in a row", text)
    print(f"{mode}\t{loss}\t{seed}\t{gave_up.group(1) if gave_up else 0}\t0\t0\tNA\tNA")
    sys.exit(0)
acked, lost = int(m.group(3)), int(m.group(4))
p50 = m.group(7) or m.group(5) or "NA"
p99 = m.group(8) or m.group(6) or "NA"
print(f"{mode}\t{loss}\t{seed}\t{acked + lost}\t{acked}\t{m.group(2)}\t{p50}\t{p99}")
EOF
            tail -n 1 "$results" >&2
        done
    done
done

python3 - "$results" >"$out/table.md" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(xs):
    xs = [float(x) for x in xs if x != "NA"]
    return statistics.median(xs) if xs else float("nan")
print("| mode | loss | goodput MB/s | frames acknowledged | latency p50 ms | latency p99 ms |")
print("|---|---:|---:|---:|---:|---:|")
for mode in ("reliable", "live", "seed"):
    for loss in sorted({r["loss"] for r in rows}, key=float):
        rs = [r for r in rows if r["mode"] == mode and r["loss"] == loss]
        if not rs:
            continue
        whole = 100 * sum(int(r["acked"]) for r in rs) / max(1, sum(int(r["frames"]) for r in rs))
        print(f"| {mode} | {loss}% | {med(r['MBps'] for r in rs):.1f} | {whole:.1f}% | "
              f"{med(r['p50_ms'] for r in rs):.1f} | {med(r['p99_ms'] for r in rs):.1f} |")
EOF
cat "$out/table.md"
echo "raw results: $results; table: $out/table.md" >&2
