#!/usr/bin/env bash
# Frame size sweep (issue 13, the plot): MB/s against frame size, 80 KB to 2 MB, for pixgram at
# its default flags beside the peers of bench/compare.sh, in one run, on loopback.
#
# Frames: real photo content, not random bytes. kleiber_4000x3000.jpg from the corpus is
# re-encoded once at quality 95 (djpeg | cjpeg -quality 95 -optimize, 4:2:0, 2.28 MB), then
# losslessly centre-cropped (jpegtran -crop, 4:3, whole 16-pixel blocks) to the crop whose file
# is nearest each target: 80, 160, 320, 640, 1,200 and 2,000 thousand bytes (within 2%).
# Every JPEG is a valid baseline file of its crop; the peers and pixgram send it as it is, no
# decode. The frames are made once into OUT/frames (kept), listed in OUT/frames.tsv.
#
# Cases, for each frame size, rounds interleaved (round 1: every case of every size, round 2 ...):
#   pix      pixgram send (default flags, window 16)          MB/s acknowledged (sender)
#   pix_w1   pixgram send --window 1 (stop-and-wait)          MB/s acknowledged (sender)
#   zmq_rr   ImageZMQ REQ/REP send_jpg (TCP)                   MB/s (client, each frame answered)
#   zmq_ps   ImageZMQ PUB/SUB (TCP)                            MB/s received at the subscriber
#   zenoh    zenoh pub/sub over TCP, shared memory off         MB/s received at the subscriber
#   blast    UDP GSO+GRO limit, 1,200-byte segments (udpblast) MB/s received; it sends no frames,
#            so it does not depend on the frame size: it is run at every size only to be measured
#            in the same minute as the others.
# pixgram runs `send --loop N FILE` to `recv --count N --quiet`; N is calibrated per (size, case)
# in a first, discarded round so that a run lasts about --seconds. Peers run for --seconds. The
# run functions are bench/lib/peers.sh, shared with bench/compare.sh.
# Writes OUT/rounds.tsv (every run), OUT/results.tsv (medians per size and case), OUT/meta.tsv
# (commit, date, load), OUT/pix-path.log (pixgram's path line per run); prints a markdown table
# of the medians and the ratios pixgram / each peer. Plot with bench/plot_sizes.py.
#
# Usage: bench/sizes.sh [options]
#   --reps R        rounds (default 3)
#   --seconds S     length of one run (default 1)
#   --bin PATH      the pixgram binary to measure (default: build the working tree, release)
#   --skip-install  do not pip install the Python peers
#   --out DIR       default target/bench-sizes
# Needs python3 (pip installs imagezmq pyzmq numpy eclipse-zenoh unless present), gcc, and
# djpeg, cjpeg, jpegtran (Debian: apt-get install libjpeg-turbo-progs) to make the frames.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$repo/../shared/corpus"
photo="$corpus/kleiber_4000x3000.jpg"
reps=3
seconds=1
bin=""
install=1
out="$repo/target/bench-sizes"
cmdline="bash bench/sizes.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --skip-install) install=0; shift ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$photo" ] || { echo "missing corpus photo $photo" >&2; exit 2; }
for t in djpeg cjpeg jpegtran; do
    command -v "$t" >/dev/null ||
        { echo "$t is missing (Debian: apt-get install libjpeg-turbo-progs)" >&2; exit 2; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# shellcheck source=bench/lib/peers.sh
. "$repo/bench/lib/peers.sh"
bench_workdir
bench_binary
install_peers "$install"

# The frames: label, target bytes; made once, kept in OUT/frames.
labels=(80K 160K 320K 640K 1.2M 2M)
targets=(80000 160000 320000 640000 1200000 2000000)
echo "== frames (crops of a quality-95 re-encoding of $(basename "$photo"))" >&2
timeout -k 1 300 python3 - "$photo" "$out/frames" "${labels[@]}" -- "${targets[@]}" <<'PY' >"$out/frames.tsv"
import os, subprocess, sys
photo, d = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
k = rest.index("--")
labels, targets = rest[:k], [int(t) for t in rest[k + 1:]]
os.makedirs(d, exist_ok=True)
src = os.path.join(d, "source_q95.jpg")
if not os.path.exists(src):
    raw = subprocess.run(["djpeg", photo], check=True, capture_output=True).stdout
    jpg = subprocess.run(["cjpeg", "-quality", "95", "-optimize"], input=raw, check=True,
                         capture_output=True).stdout
    open(src + ".tmp", "wb").write(jpg)
    os.replace(src + ".tmp", src)
W, H = 4000, 3000
def crop(s):
    w, h = max(16, round(W * s / 16) * 16), max(16, round(H * s / 16) * 16)
    w, h = min(w, W), min(h, H)
    x, y = (W - w) // 2 // 16 * 16, (H - h) // 2 // 16 * 16
    data = subprocess.run(["jpegtran", "-crop", f"{w}x{h}+{x}+{y}", "-copy", "none", "-optimize", src],
                          check=True, capture_output=True).stdout
    return data, f"{w}x{h}+{x}+{y}"
print("label\tbytes\ttarget\tcrop")
for label, t in zip(labels, targets):
    path = os.path.join(d, f"frame_{label}.jpg")
    lo, hi = 0.01, 1.0
    best = None
    for _ in range(30):
        mid = (lo + hi) / 2
        data, geo = crop(mid)
        if best is None or abs(len(data) - t) < abs(len(best[0]) - t):
            best = (data, geo)
        if abs(len(data) - t) <= 0.005 * t:
            break
        lo, hi = (mid, hi) if len(data) < t else (lo, mid)
    data, geo = best
    if abs(len(data) - t) > 0.02 * t:
        sys.exit(f"no crop within 2% of {t} bytes (nearest {len(data)}, {geo})")
    open(path, "wb").write(data)
    print(f"{label}\t{len(data)}\t{t}\t{geo}")
PY
declare -A file
while IFS=$'\t' read -r label bytes _target geo; do
    [ "$label" = label ] && continue
    file[$label]="$out/frames/frame_$label.jpg"
    printf '   %-5s %9s bytes  crop %s\n' "$label" "$bytes" "$geo" >&2
done <"$out/frames.tsv"

cases=(pix pix_w1 zmq_rr zmq_ps zenoh blast)
declare -A count
: >"$out/pix-path.log"
run_case() {
    local size="$1" c="$2" f="${file[$1]}"
    case "$c" in
    pix | pix_w1)
        local extra=()
        [ "$c" = pix_w1 ] && extra=(--window 1)
        local n="${count[$size/$c]:-$((50000000 / $(stat -c %s "$f")))}"
        # Log the path line before printing the figures: the caller reads them and starts the
        # next run, which overwrites send.err.
        local figures
        figures="$(pixgram_run "$bin" "$n" "$f" "${extra[@]}")"
        { printf '%s %s n=%s: ' "$size" "$c" "$n"; grep '^path:' "$work/send.err" || echo "(no path line)"; } \
            >>"$out/pix-path.log"
        echo "$figures"
        ;;
    zmq_rr) zmq_reqrep_run "$f" ;;
    zmq_ps) pubsub_run imagezmq_pubsub.py "$f" ;;
    zenoh) pubsub_run zenoh_pubsub.py "$f" ;;
    blast) blast_run 1200 ;;
    esac
}

loads=("start: $(uptime)")
echo "== load: ${loads[0]}" >&2
echo "== calibrating (a discarded round)" >&2
for size in "${labels[@]}"; do
    for c in pix pix_w1; do
        read -r fps _ < <(run_case "$size" "$c")
        count[$size/$c]=$(python3 -c "f=float('$fps'); print(max(5, min(200000, round((f if f == f and f > 0 else 100) * $seconds))))")
    done
    for c in zmq_rr zmq_ps zenoh blast; do run_case "$size" "$c" >/dev/null; done
done

rounds="$out/rounds.tsv"
printf 'round\tsize\tbytes\tcase\tframes_per_s\tMB_per_s\n' >"$rounds"
for r in $(seq "$reps"); do
    echo "== round $r of $reps" >&2
    for size in "${labels[@]}"; do
        bytes=$(stat -c %s "${file[$size]}")
        for c in "${cases[@]}"; do
            read -r fps mbps < <(run_case "$size" "$c")
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$size" "$bytes" "$c" "$fps" "$mbps" >>"$rounds"
            printf '   %-5s %-7s %10s frames/s %10s MB/s\n' "$size" "$c" "$fps" "$mbps" >&2
        done
    done
    loads+=("after round $r: $(uptime)")
    echo "== load: ${loads[-1]}" >&2
done

{
    printf 'key\tvalue\n'
    printf 'command\t%s\n' "$cmdline"
    printf 'commit\t%s\n' "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    printf 'pixgram_source_commit\t%s\n' \
        "$(git -C "$repo" log -1 --format=%h -- crates Cargo.toml Cargo.lock 2>/dev/null || echo unknown)"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'reps\t%s\n' "$reps"
    printf 'seconds\t%s\n' "$seconds"
    printf 'cores\t%s\n' "$(nproc)"
    for l in "${loads[@]}"; do printf 'load\t%s\n' "$l"; done
} >"$out/meta.tsv"

python3 - "$rounds" "$out/results.tsv" "$reps" <<'PY'
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
sizes, cases = [], []
for r in rows:
    if r["size"] not in sizes:
        sizes.append(r["size"])
    if r["case"] not in cases:
        cases.append(r["case"])
nbytes = {r["size"]: int(r["bytes"]) for r in rows}
def vals(size, case, key):
    v = [float(r[key]) for r in rows if r["size"] == size and r["case"] == case]
    return [x for x in v if not math.isnan(x)]
def med(size, case, key="MB_per_s"):
    v = vals(size, case, key)
    return statistics.median(v) if v else float("nan")
with open(sys.argv[2], "w") as f:
    f.write("size\tbytes\tcase\truns\truns_ok\tMB_per_s\tframes_per_s\tMB_per_s_min\tMB_per_s_max\n")
    for s in sizes:
        for c in cases:
            v = vals(s, c, "MB_per_s")
            runs = sum(1 for r in rows if r["size"] == s and r["case"] == c)
            fps = med(s, c, "frames_per_s")
            lo, hi = (min(v), max(v)) if v else (float("nan"), float("nan"))
            f.write(f"{s}\t{nbytes[s]}\t{c}\t{runs}\t{len(v)}\t{med(s, c):.1f}\t{fps:.1f}\t{lo:.1f}\t{hi:.1f}\n")
names = {"pix": "pixgram `send`", "pix_w1": "pixgram `--window 1`", "zmq_rr": "ImageZMQ REQ/REP",
         "zmq_ps": "ImageZMQ PUB/SUB", "zenoh": "zenoh TCP", "blast": "UDP GSO+GRO limit"}
def f(x):
    return "failed" if math.isnan(x) else f"{x:,.0f}"
def ratio(a, b):
    return "-" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}x"
print(f"Medians of {sys.argv[3]} interleaved rounds, MB/s (frames/s in brackets for the pixgram and REQ/REP columns).\n")
print("| frame | " + " | ".join(names[c] for c in cases) + " |")
print("|---|" + "---:|" * len(cases))
for s in sizes:
    cells = []
    for c in cases:
        m = med(s, c)
        if c in ("pix", "pix_w1", "zmq_rr") and not math.isnan(m):
            cells.append(f"{f(m)} ({f(med(s, c, 'frames_per_s'))})")
        else:
            cells.append(f(m))
    print(f"| {s} ({nbytes[s]:,} B) | " + " | ".join(cells) + " |")
print("\nRatios of the medians, pixgram / peer:\n")
print("| frame | `send` / REQ/REP | `send` / PUB/SUB | `send` / zenoh | `send` / UDP limit | `--window 1` / REQ/REP |")
print("|---|---:|---:|---:|---:|---:|")
for s in sizes:
    p, w = med(s, "pix"), med(s, "pix_w1")
    print(f"| {s} | {ratio(p, med(s, 'zmq_rr'))} | {ratio(p, med(s, 'zmq_ps'))} | "
          f"{ratio(p, med(s, 'zenoh'))} | {ratio(p, med(s, 'blast'))} | {ratio(w, med(s, 'zmq_rr'))} |")
PY
echo "== medians in $out/results.tsv; load during the run:" >&2
for l in "${loads[@]}"; do echo "   $l" >&2; done
