#!/usr/bin/env bash
# recv --save beside recv with no sink, in one run, interleaved rounds, loopback (issue 13):
# what saving every frame durably costs, on the saver pool (the default) and on the receive
# loop (--save-threads 0, how recv saved before issue 13's saver pool).
#
# Cases, each run once per round (pixgram send --loop N FILE to recv --count N --quiet):
#   nosink      recv with no sink                                      (the yardstick)
#   loop        recv --save DIR --save-threads 0 (every file written and fsynced in the loop)
#   pool        recv --save DIR (the saver pool: --save-threads 4)
# each with the default window and with --window 1 (stop-and-wait). The figure is the
# sender's: frames acknowledged, and an ACK means the file is on disk.
#
# Usage: bench/save.sh [--reps R] [--frames N] [--bin PATH] [--file JPEG] [--dir DIR]
#   --dir: where the files go (default a new folder under target/; on the disk, not tmpfs)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
file="$repo/../shared/corpus/fallenleaf_1920x1080.jpg"
reps=5
frames=600
bin=""
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --file) file="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$file" ] || { echo "missing frame $file" >&2; exit 2; }
# shellcheck source=bench/lib/peers.sh
. "$repo/bench/lib/peers.sh"
bench_workdir
bench_binary
out="$repo/target/bench-save"
mkdir -p "$out"
[ -n "$dir" ] || dir="$out/files"

# One run: recv (with the sink args $2...) and send (--window $1 unless 0); "frames/s MB/s".
one() {
    local window="$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$work/recv.err"
    timeout -k 1 120 "$bin" recv --listen 127.0.0.1:0 --count "$frames" --quiet "$@" \
        >/dev/null 2>"$work/recv.err" &
    local rpid=$!
    started+=("$rpid")
    local addr
    addr="$(listening_address "$work/recv.err")"
    local wargs=()
    [ "$window" != 0 ] && wargs=(--window "$window")
    timeout -k 1 120 "$bin" send --to "$addr" --loop "$frames" "${wargs[@]}" "$file" \
        >/dev/null 2>"$work/send.err" || true
    wait "$rpid" 2>/dev/null || true
    if [ $# -gt 0 ]; then
        local saved
        saved="$(find "$dir" -maxdepth 1 -type f ! -name '.*' | wc -l)"
        [ "$saved" = "$frames" ] || { echo "only $saved of $frames files saved" >&2; exit 1; }
    fi
    parse "$work/send.err" sent
}

results="$out/results.tsv"
printf 'round\tcase\tframes_per_s\tMB_per_s\n' >"$results"
echo "== $reps rounds of $frames frames of $(basename "$file"), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$reps"); do
    for w in 0 1; do
        tag=$([ "$w" = 0 ] && echo "" || echo "_w1")
        read -r f m < <(one "$w")
        printf '%s\tnosink%s\t%s\t%s\n' "$r" "$tag" "$f" "$m" >>"$results"
        read -r f m < <(one "$w" --save "$dir" --save-threads 0)
        printf '%s\tloop%s\t%s\t%s\n' "$r" "$tag" "$f" "$m" >>"$results"
        read -r f m < <(one "$w" --save "$dir")
        printf '%s\tpool%s\t%s\t%s\n' "$r" "$tag" "$f" "$m" >>"$results"
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
rm -rf "$dir"
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for case in sorted({r["case"] for r in rows}):
    med[case] = statistics.median(float(r["frames_per_s"]) for r in rows if r["case"] == case)
print("| case | default window, frames/s | --window 1, frames/s |")
print("|---|---|---|")
for c, label in [("nosink", "recv, no sink"), ("loop", "recv --save, --save-threads 0 (in the loop)"),
                 ("pool", "recv --save (saver pool)")]:
    print(f"| {label} | {med[c]:.0f} ({med[c] / med['nosink']:.2f}x no sink) "
          f"| {med[c + '_w1']:.0f} ({med[c + '_w1'] / med['nosink_w1']:.2f}x) |")
print(f"\nsaver pool / in the loop: {med['pool'] / med['loop']:.2f}x (default window), "
      f"{med['pool_w1'] / med['loop_w1']:.2f}x (--window 1)")
PY
