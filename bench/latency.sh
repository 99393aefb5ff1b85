#!/usr/bin/env bash
# End-to-end latency of the test pattern on loopback: render + JPEG encode on the sender's
# source thread, send (live mode), receive, decode on the receiver's decode thread. For each
# size, --seconds of 30 fps; the receiver's summary gives capture-to-arrival p50/p99 and the
# encode, network-and-queues and decode shares; the sender's gives frames skipped.
#
# Usage: bench/latency.sh [--seconds S] [--features F] [--bin PATH] [SIZE...]   (default 10 s;
#        640x480 1280x720 1920x1080; --features turbojpeg to use the system's libjpeg-turbo;
#        --bin measures that binary instead of building the working tree)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
secs=10
features=()
sizes=()
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) secs="$2"; shift 2 ;;
    --features) features=(--features "$2"); shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) sizes+=("$1"); shift ;;
    esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(640x480 1280x720 1920x1080)
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --release -q -p pixgram-cli "${features[@]}")
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
fi
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
count=$((secs * 30))
printf '| size | frames received | fps | capture to arrival p50 / p99 | encode p50 / p99 | network and queues p50 / p99 | decode p50 / p99 | skipped at the source |\n'
printf '|---|---:|---:|---|---|---|---|---:|\n'
for size in "${sizes[@]}"; do
    "$bin" recv --listen 127.0.0.1:0 --quiet --decode --count "$count" --duration $((secs + 10)) \
        >/dev/null 2>"$work/recv.err" &
    rpid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/recv.err" && break; sleep 0.05; done
    addr="$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/recv.err")"
    "$bin" send --to "$addr" --pattern --size "$size" --fps 30 --count "$count" 2>"$work/send.err" || true
    wait "$rpid" || true
    python3 - "$size" "$work/recv.err" "$work/send.err" <<'PY'
import re, sys
size, recv, send = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
got = re.search(r"received (\d+) frames, [\d.]+ MB in ([\d.]+) s: ([\d.]+) frames/s", recv)
lat = re.search(r"capture to arrival: p50 ([\d.]+) ms p99 ([\d.]+) ms; encode p50 ([\d.]+) ms p99 ([\d.]+) ms; "
                r"network and queues p50 ([\d.]+) ms p99 ([\d.]+) ms; decode p50 ([\d.]+) ms p99 ([\d.]+) ms", recv)
skipped = re.search(r"(\d+) frames skipped", send)
if not (got and lat):
    print(f"| {size} | failed: {recv.strip().splitlines()[-1] if recv.strip() else '?'} |")
    sys.exit(0)
g = lat.groups()
print(f"| {size} | {got.group(1)} | {float(got.group(3)):.1f} | {g[0]} / {g[1]} ms | {g[2]} / {g[3]} ms | "
      f"{g[4]} / {g[5]} ms | {g[6]} / {g[7]} ms | {skipped.group(1) if skipped else 0} |")
PY
done
