#!/usr/bin/env bash
# pixgram at its default flags beside the peers users compare it with, in one run, on the same
# corpus frames, on loopback: the table of issue 13 with every ratio.
#
# Cases, each run once per round, rounds interleaved (case A, B, C, ..., then again):
#   pix_w1_1080   pixgram send --window 1, the 1080p JPEG              frames/s (sender, acknowledged)
#   zmq_rr_1080   ImageZMQ REQ/REP send_jpg, the same file              frames/s
#   pix_1080      pixgram send (default window)                        MB/s acknowledged
#   zmq_ps_1080   ImageZMQ PUB/SUB, received at the subscriber          MB/s received
#   zenoh_1080    zenoh pub/sub over TCP (shared memory off), received   MB/s received
#   pix_d1200     pixgram send --datagram-size 1200                     MB/s acknowledged
#   blast_1200    UDP GSO+GRO limit, 1,200-byte segments (bench/peers/udpblast.c)   MB/s received
#   pix_w1_4k     pixgram send --window 1, the 4000x3000 JPEG          frames/s
#   zmq_rr_4k     ImageZMQ REQ/REP, the 4000x3000 JPEG                  frames/s
#   pix_4k        pixgram send, the 4000x3000 JPEG                     frames/s
#   pix_key_1080  pixgram send --key-file (both ends), the 1080p JPEG   MB/s acknowledged
# pixgram runs send the same file --loop N times to `recv --count N --quiet`; N is calibrated
# in a first, discarded round so that a run lasts about --seconds. Peers run for --seconds.
# Prints the medians and the ratios of issue 13's targets; raw results in OUT/results.tsv.
#
# Usage: bench/compare.sh [options]
#   --reps R        rounds (default 3)
#   --seconds S     length of one run (default 1)
#   --bin PATH      the pixgram binary to measure (default: build the working tree, release)
#   --also LABEL=PATH   a second pixgram binary (e.g. before=target/pixgram-old) measured in the
#                   same rounds; its pixgram cases get the LABEL suffix, with ratios to the first
#   --skip-install  do not pip install the Python peers
#   --out DIR       default target/bench-compare
# Needs python3 (pip installs imagezmq pyzmq numpy eclipse-zenoh unless present) and gcc.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$repo/../shared/corpus"
hd="$corpus/fallenleaf_1920x1080.jpg"
big="$corpus/kleiber_4000x3000.jpg"
reps=3
seconds=1
bin=""
also=""
install=1
out="$repo/target/bench-compare"
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --also) also="$2"; shift 2 ;;
    --skip-install) install=0; shift ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for f in "$hd" "$big"; do [ -f "$f" ] || { echo "missing corpus frame $f" >&2; exit 2; }; done
mkdir -p "$out"
# shellcheck source=bench/lib/peers.sh
. "$repo/bench/lib/peers.sh"
bench_workdir
bench_binary
declare -A bins=([pix]="$bin")
suffixes=("")
if [ -n "$also" ]; then
    bins["pix_${also%%=*}"]="${also#*=}"
    suffixes+=("_${also%%=*}")
fi
install_peers "$install"
"$bin" keygen "$work/key" >/dev/null

# case -> "kind file args..." (kind: pix or a peer); which figure counts: fps or mbps.
declare -A what metric
cases=()
add() { cases+=("$1"); what[$1]="$2"; metric[$1]="$3"; }
for s in "${suffixes[@]}"; do
    add "pix_w1_1080$s" "pix$s $hd --window 1" fps
done
add zmq_rr_1080 "zmq_rr $hd" fps
for s in "${suffixes[@]}"; do add "pix_1080$s" "pix$s $hd" mbps; done
add zmq_ps_1080 "pubsub imagezmq_pubsub.py $hd" mbps
add zenoh_1080 "pubsub zenoh_pubsub.py $hd" mbps
for s in "${suffixes[@]}"; do add "pix_d1200$s" "pix$s $hd --datagram-size 1200" mbps; done
add blast_1200 "blast" mbps
for s in "${suffixes[@]}"; do add "pix_w1_4k$s" "pix$s $big --window 1" fps; done
add zmq_rr_4k "zmq_rr $big" fps
for s in "${suffixes[@]}"; do add "pix_4k$s" "pix$s $big" fps; done
for s in "${suffixes[@]}"; do add "pix_key_1080$s" "keyed$s $hd" mbps; done

declare -A count
run_case() {
    local c="$1"
    # shellcheck disable=SC2086
    set -- ${what[$c]}
    local kind="$1"
    shift
    case "$kind" in
    pix* | keyed*)
        local s="${kind#pix}"
        s="${s#keyed}"
        local file="$1"
        shift
        local n="${count[$c]:-$(( 50000000 / $(stat -c %s "$file") ))}"
        KEYED=$([ "${kind#keyed}" != "$kind" ] && echo 1 || echo 0) \
            pixgram_run "${bins[pix$s]}" "$n" "$file" "$@"
        ;;
    zmq_rr) zmq_reqrep_run "$1" ;;
    pubsub) pubsub_run "$1" "$2" ;;
    blast) blast_run 1200 ;;
    esac
}

echo "== calibrating (a discarded round)" >&2
for c in "${cases[@]}"; do
    read -r fps _ < <(run_case "$c")
    case "$c" in
    pix*)
        count[$c]=$(python3 -c "import math,sys; f=float('$fps'); print(max(5, min(200000, round((f if f == f and f > 0 else 100) * $seconds))))")
        ;;
    esac
done

results="$out/results.tsv"
printf 'round\tcase\tframes_per_s\tMB_per_s\n' >"$results"
for r in $(seq "$reps"); do
    echo "== round $r of $reps" >&2
    for c in "${cases[@]}"; do
        read -r fps mbps < <(run_case "$c")
        printf '%s\t%s\t%s\t%s\n' "$r" "$c" "$fps" "$mbps" >>"$results"
        printf '   %-16s %10s frames/s %10s MB/s\n' "$c" "$fps" "$mbps" >&2
    done
done

python3 - "$results" "$reps" "${suffixes[@]}" <<'PY'
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
suffixes = sys.argv[3:]
def med(case, key):
    v = [float(r[key]) for r in rows if r["case"] == case and r[key] != "nan"]
    v = [x for x in v if not math.isnan(x)]
    return statistics.median(v) if v else float("nan")
fps = lambda c: med(c, "frames_per_s")
mbs = lambda c: med(c, "MB_per_s")
def f(x, unit):
    return "failed" if math.isnan(x) else f"{x:,.0f} {unit}"
print(f"Medians of {sys.argv[2]} interleaved rounds; ratio = pixgram / peer of the medians.\n")
print("| target | pixgram | peer | ratio | goal |")
print("|---|---:|---:|---:|---:|")
for s in suffixes:
    tag = f" ({s[1:]})" if s else ""
    lines = [
        (f"1. `send --window 1`, 1080p{tag}", fps(f"pix_w1_1080{s}"), "frames/s", "ImageZMQ REQ/REP", fps("zmq_rr_1080"), ">= 1.0x"),
        (f"1. `send --window 1`, 4000x3000{tag}", fps(f"pix_w1_4k{s}"), "frames/s", "ImageZMQ REQ/REP", fps("zmq_rr_4k"), ">= 1.0x"),
        (f"2. `send`, 1080p{tag}", mbs(f"pix_1080{s}"), "MB/s", "ImageZMQ PUB/SUB received", mbs("zmq_ps_1080"), ">= 2.0x"),
        (f"2. `send`, 1080p{tag}", mbs(f"pix_1080{s}"), "MB/s", "zenoh over TCP received", mbs("zenoh_1080"), ">= 1.5x"),
        (f"3. `send --datagram-size 1200`{tag}", mbs(f"pix_d1200{s}"), "MB/s", "UDP GSO+GRO, 1,200 B", mbs("blast_1200"), ">= 0.5x"),
        (f"4. `send`, 4000x3000{tag}", fps(f"pix_4k{s}"), "frames/s", "ImageZMQ REQ/REP", fps("zmq_rr_4k"), ">= 1.5x"),
        (f"5. `send --key-file`, 1080p{tag}", mbs(f"pix_key_1080{s}"), "MB/s", "pixgram `send` without a key", mbs(f"pix_1080{s}"), ">= 0.8x"),
    ]
    for name, a, unit, peer, b, goal in lines:
        ratio = a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")
        print(f"| {name} | {f(a, unit)} | {peer}: {f(b, unit)} | {ratio:.2f}x | {goal} |")
if len(suffixes) > 1:
    s = suffixes[1]
    print(f"\n| case | this build | {s[1:]} | ratio |")
    print("|---|---:|---:|---:|")
    for c, get, unit in [("pix_w1_1080", fps, "frames/s"), ("pix_1080", mbs, "MB/s"), ("pix_d1200", mbs, "MB/s"),
                         ("pix_w1_4k", fps, "frames/s"), ("pix_4k", fps, "frames/s"), ("pix_key_1080", mbs, "MB/s")]:
        a, b = get(c), get(c + s)
        print(f"| {c} | {f(a, unit)} | {f(b, unit)} | {a / b if b else float('nan'):.2f}x |")
PY
