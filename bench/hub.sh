#!/usr/bin/env bash
# Issue 17: hub fan-out on loopback. The corpus images (../shared/corpus), repeated --repeat
# times, sent reliably as fast as the path allows, either straight to `pixgram recv` (direct)
# or into `pixgram hub` with 1, 2 and 4 subscribers (`pixgram recv --from`, every frame), in the
# same run, rounds interleaved. The hub's backlogs are made large enough for the whole run, so
# every subscriber gets every frame and the figure is the fan-out's throughput, not its
# resynchronisation. Per subscriber: frames/s and MB/s from its own summary (first to last
# frame); the direct receiver's the same way. Prints a markdown table of medians over --reps
# rounds (per-subscriber figures: the median over every subscriber of every round) and the raw
# lines to $out/raw.txt. Also the sender's own rate (acknowledged by the hub or the receiver).
#
# Usage: bench/hub.sh [--reps 3] [--repeat 20] [--fanout "1 2 4"] [--out DIR] [--bin PATH]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=3
repeat=20
fanout="1 2 4"
out="$repo/target/bench-hub"
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --fanout) fanout="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --release -q -p pixgram-cli)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
fi
mkdir -p "$out"
raw="$out/raw.txt"
: >"$raw"
files=()
while IFS= read -r f; do files+=("$f"); done < <(find "$repo/../shared/corpus" -maxdepth 1 -type f \
    \( -name '*.jpg' -o -name '*.png' \) | sort)
[ ${#files[@]} -gt 0 ] || { echo "bench/hub.sh: no images in ../shared/corpus" >&2; exit 2; }
args=()
for _ in $(seq "$repeat"); do args+=("${files[@]}"); done
total=${#args[@]}
bytes=$(for _ in $(seq "$repeat"); do cat "${files[@]}"; done | wc -c)
echo "bench/hub.sh: $total frames, $((bytes / 1000000)) MB per round; load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$raw"

port=19900
next_port() { port=$((port + 1)); echo "$port"; }
wait_line() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done; cat "$1"; exit 1; }
# "received N frames, X MB in Y s: F frames/s, M MB/s" -> "F M"
rates() { sed -n 's/^received \([0-9]*\) frames, [0-9.]* MB in [0-9.]* s: \([0-9.]*\) frames\/s, \([0-9.]*\) MB\/s.*/\1 \2 \3/p' "$1" | tail -n 1; }
send_rates() { sed -n 's/^sent [0-9]* frames, [0-9.]* MB in [0-9.]* s: \([0-9.]*\) frames\/s, \([0-9.]*\) MB\/s; acked \([0-9]*\).*/\3 \1 \2/p' "$1" | tail -n 1; }

direct_round() {
    local p
    p=$(next_port)
    timeout 120 "$bin" recv --listen "127.0.0.1:$p" -q --count "$total" --duration 100 \
        2>"$out/direct.err" >/dev/null &
    local rpid=$!
    wait_line "$out/direct.err" "listening on"
    timeout 120 "$bin" send --to "127.0.0.1:$p" "${args[@]}" 2>"$out/send.err" >/dev/null || true
    wait "$rpid" || true
    echo "direct recv $(rates "$out/direct.err") send $(send_rates "$out/send.err")" >>"$raw"
}

hub_round() {
    local n="$1" p i pids=()
    p=$(next_port)
    timeout 150 "$bin" hub --listen "127.0.0.1:$p" -q --duration 120 \
        --max-backlog-frames 100000 --max-backlog-bytes 4000000000 2>"$out/hub.err" >/dev/null &
    local hpid=$!
    wait_line "$out/hub.err" "hub listening on"
    for i in $(seq "$n"); do
        timeout 120 "$bin" recv --from "127.0.0.1:$p" -q --count "$total" --duration 100 \
            2>"$out/sub$i.err" >/dev/null &
        pids+=($!)
    done
    for i in $(seq "$n"); do wait_line "$out/sub$i.err" "subscribed: "; done
    timeout 120 "$bin" send --to "127.0.0.1:$p" "${args[@]}" 2>"$out/send.err" >/dev/null || true
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    kill -INT "$hpid" 2>/dev/null || true
    wait "$hpid" || true
    for i in $(seq "$n"); do
        echo "hub$n sub$i $(rates "$out/sub$i.err") send $(send_rates "$out/send.err")" >>"$raw"
    done
}

for r in $(seq "$reps"); do
    direct_round
    for n in $fanout; do hub_round "$n"; done
    echo "bench/hub.sh: round $r done" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw"

python3 - "$raw" "$total" "$fanout" <<'EOF'
import statistics, sys
raw, total, fanout = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
rows = {}
for line in open(raw):
    f = line.split()
    if not f or f[0] not in ("direct",) and not f[0].startswith("hub"):
        continue
    try:
        got, fps, mbs = int(f[2]), float(f[3]), float(f[4])
        acked, sfps, smbs = int(f[6]), float(f[7]), float(f[8])
    except (IndexError, ValueError):
        print(f"unparsed: {line.strip()}")
        continue
    rows.setdefault(f[0], []).append((got, fps, mbs, acked, sfps, smbs))
med = lambda xs: statistics.median(xs) if xs else float("nan")
d = rows.get("direct", [])
dm = med([r[2] for r in d])
print("| path | receivers | frames each got (of %d) | frames/s per receiver | MB/s per receiver | vs direct | publisher MB/s (acknowledged) |" % total)
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| direct send -> recv | 1 | {min(r[0] for r in d) if d else 0} | {med([r[1] for r in d]):.1f} | {dm:.1f} | 1.00 | {med([r[5] for r in d]):.1f} |")
for n in fanout:
    h = rows.get(f"hub{n}", [])
    m = med([r[2] for r in h])
    print(f"| send -> hub -> recv --from | {n} | {min(r[0] for r in h) if h else 0} | {med([r[1] for r in h]):.1f} | {m:.1f} | {m / dm:.2f} | {med([r[5] for r in h]):.1f} |")
EOF
