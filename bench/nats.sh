#!/usr/bin/env bash
# Issue 17: cameras -> pixgram -> NATS -> workers, against the same frames published directly
# with a NATS client (async-nats, crates/pixgram/examples/nats_publish.rs): NATS's own ceiling
# on this machine. Everything on 127.0.0.1, one nats-server started here (its own config,
# a free port, a temporary store), every process under `timeout`.
#
#   bash bench/nats.sh [--cameras K] [--frames N] [--workers W] [--runs R] [--jetstream] [--file F]
#                      [--bin PATH]
#
# --bin: the pixgram binary to measure (built with --features nats), e.g. an older build to
# compare with, run by run; by default the workspace's release build (built here).
#
# Each run: W workers `pixgram recv --from-nats URL --queue bench --quiet` (no sink: they
# count), then either K `pixgram send --loop N` into one `pixgram recv --publish URL`, or K
# direct publishers of N frames each. The figure is the workers' together: every frame they
# got over the longest of their first-to-last spans. A third path, the cameras into a recv
# with no sink, says what pixgram alone delivers in the same run. Prints one line per run and
# the medians.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cameras=4 frames=250 workers=2 runs=3 jetstream=0 bin=""
file="$repo/../shared/corpus/fallenleaf_1920x1080.jpg"
while [ $# -gt 0 ]; do
    case "$1" in
        --cameras) cameras="$2"; shift 2 ;;
        --frames) frames="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --jetstream) jetstream=1; shift ;;
        --file) file="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v nats-server >/dev/null || { echo "nats-server missing: apt-get install nats-server" >&2; exit 2; }
[ -f "$file" ] || { echo "no frame file $file (--file F)" >&2; exit 2; }
# shellcheck source=bench/lib/peers.sh
source "$repo/bench/lib/peers.sh"
bench_workdir
target="${CARGO_TARGET_DIR:-$repo/target}"
echo "== build (release, --features nats)" >&2
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --release -q -p pixgram-cli --features nats)
    bin="$target/release/pixgram"
fi
(cd "$repo" && cargo build --release -q -p pixgram --features nats --example nats_publish)
direct="$target/release/examples/nats_publish"
total=$((cameras * frames))

port="$(free_port)"
cat >"$work/nats.conf" <<EOF
listen: 127.0.0.1:$port
max_payload: 8MB
jetstream { store_dir: "$work/store", max_memory_store: 256MB, max_file_store: 8GB }
EOF
timeout 3600 nats-server -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
started+=($!)
url="nats://127.0.0.1:$port"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

# Each path of each run has its own subject prefix (and with --jetstream its own stream over
# PREFIX.>), so no run's consumers see another run's frames.
js_flags=()

# Starts W workers (their stderr in $work/worker.$run.$i); waits until each is subscribed.
start_workers() {
    local run="$1" i
    wpids=()
    js_flags=()
    [ "$jetstream" = 1 ] && js_flags=(--jetstream "BENCH_$run")
    for i in $(seq "$workers"); do
        timeout 300 "$bin" recv --from-nats "$url" --subject "$run.frames.>" --queue "bench$run" \
            "${js_flags[@]}" --quiet --duration 240 >/dev/null 2>"$work/worker.$run.$i" &
        wpids+=($!)
        started+=($!)
    done
    for i in $(seq "$workers"); do
        for _ in $(seq 200); do grep -q "from NATS at" "$work/worker.$run.$i" && break; sleep 0.05; done
    done
}

# Waits until the workers of $1 have together... been idle 1 s after the publishers ended,
# stops them (SIGINT: they print their summary), and prints "frames/s MB/s got".
stop_workers() {
    local run="$1"
    sleep 1.5
    kill -INT "${wpids[@]}" 2>/dev/null || true
    wait "${wpids[@]}" 2>/dev/null || true
    python3 - "$work" "$run" "$workers" <<'PY'
import re, sys
work, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
frames = mb = span = 0.0
for i in range(1, n + 1):
    t = open(f"{work}/worker.{run}.{i}", errors="replace").read()
    m = re.search(r"from NATS: (\d+) frames, ([\d.]+) MB in ([\d.]+) s", t)
    if m:
        frames += int(m[1]); mb += float(m[2]); span = max(span, float(m[3]))
    else:
        m = re.search(r"from NATS: (\d+) frames, ([\d.]+) MB", t)
        if m:
            frames += int(m[1]); mb += float(m[2])
print(f"{frames/span:.1f} {mb/span:.1f} {int(frames)}" if span else f"nan nan {int(frames)}")
PY
}

pixgram_path() {
    local run="$1" rport i
    start_workers "p$run"
    rport="$(free_port)"
    timeout 300 "$bin" recv --listen "127.0.0.1:$rport" --publish "$url" --subject "p$run" "${js_flags[@]}" --quiet \
        --count "$total" --duration 200 >/dev/null 2>"$work/recv.$run" &
    local rpid=$!
    started+=($rpid)
    for _ in $(seq 200); do grep -q "listening on" "$work/recv.$run" && break; sleep 0.05; done
    for i in $(seq "$cameras"); do
        timeout 200 "$bin" send --to "127.0.0.1:$rport" "$file" --loop "$frames" >/dev/null 2>"$work/send.$run.$i" &
        started+=($!)
    done
    wait "$rpid" || true
    grep "^nats: published" "$work/recv.$run" >&2 || echo "(no nats line from recv)" >&2
    stop_workers "p$run"
}

direct_path() {
    local run="$1" i pids=()
    start_workers "d$run"
    for i in $(seq "$cameras"); do
        timeout 200 "$direct" "$url" "d$run.frames.direct-$i.0" "$file" "$frames" \
            ${js_flags[*]:+jetstream} >"$work/direct.$run.$i" 2>&1 &
        pids+=($!)
        started+=($!)
    done
    wait "${pids[@]}" || true
    stop_workers "d$run"
}

# The same cameras into a recv with no sink (no NATS): what pixgram alone delivers in this
# run; prints "frames/s MB/s" (the receiver's rate line).
alone_path() {
    local run="$1" rport i
    rport="$(free_port)"
    timeout 300 "$bin" recv --listen "127.0.0.1:$rport" --quiet --count "$total" --duration 200 \
        >/dev/null 2>"$work/alone.$run" &
    local rpid=$!
    started+=($rpid)
    for _ in $(seq 200); do grep -q "listening on" "$work/alone.$run" && break; sleep 0.05; done
    for i in $(seq "$cameras"); do
        timeout 200 "$bin" send --to "127.0.0.1:$rport" "$file" --loop "$frames" >/dev/null 2>&1 &
        started+=($!)
    done
    wait "$rpid" || true
    parse "$work/alone.$run" received
}

echo "== $cameras cameras x $frames frames of $(stat -c %s "$file") bytes ($(basename "$file")), $workers workers$([ "$jetstream" = 1 ] && echo ", JetStream (acknowledgements awaited, 64 at once)"); $runs runs" >&2
results="$work/results"
: >"$results"
for run in $(seq "$runs"); do
    p="$(pixgram_path "$run")"
    d="$(direct_path "$run")"
    a="$(alone_path "$run")"
    echo "run $run: through pixgram ${p% *} (frames/s MB/s; ${p##* } of $total frames at the workers); direct ${d% *} (${d##* } of $total); pixgram alone, no NATS: $a"
    echo "$p $d $a" >>"$results"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
ratio = statistics.median(r[0] / r[3] for r in rows if r[3] == r[3] and r[3] > 0)
print(f"median: through pixgram {med(0):.0f} frames/s, {med(1):.0f} MB/s; direct NATS client "
      f"{med(3):.0f} frames/s, {med(4):.0f} MB/s; ratio (pixgram / direct, paired per run) {ratio:.2f}; "
      f"pixgram alone (cameras into recv, no NATS) {med(6):.0f} frames/s, {med(7):.0f} MB/s")
PY
