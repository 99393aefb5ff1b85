#!/usr/bin/env bash
# RTP/JPEG (RFC 2435) on loopback, 1080p corpus frames sent as fast as the sender goes:
# pixgram (`send --rtp` -> `recv --rtp`) against GStreamer's own pair (`multifilesrc !
# rtpjpegpay mtu=M ! udpsink` -> `udpsrc buffer-size=B ! rtpjpegdepay ! fakesink`),
# measured in the same run, turn about. Both at --mtu M (default 1400, GStreamer's default).
#
# Figures: frames/s = frames the receiver reassembled / the sender's wall time (process start
# to exit, the same clock for both); lost = frames sent - frames reassembled (receive-buffer
# overflow: both receivers ask for the same buffer, --buffer). Medians over --reps runs; the ratio is
# pixgram's median over GStreamer's.
#
# Usage: bench/rtp.sh [--frames N] [--reps R] [--mtu M] [--image FILE] [--rate MBIT] [--buffer B]
#   default: 2000 frames, 5 reps, mtu 1400, ../shared/corpus/bythewater_1920x1080.jpg (480 KB),
#   pixgram at its default pacing (--rate: pixgram's --rate in Mbit/s instead), both
#   receivers asking for pixgram's default 32 MiB receive buffer (--buffer: B bytes for both).
# Needs gst-launch-1.0 (gstreamer1.0-tools, -plugins-base, -plugins-good) and a release build
# (made here). Loopback only; every process bounded by `timeout`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
frames=2000
reps=5
mtu=1400
image="$repo/../shared/corpus/bythewater_1920x1080.jpg"
rate=()
buffer=33554432
while [ $# -gt 0 ]; do
    case "$1" in
    --frames) frames="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --mtu) mtu="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --rate) rate=(--rate "$2"); shift 2 ;;
    --buffer) buffer="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
    esac
done
command -v gst-launch-1.0 >/dev/null || { echo "bench/rtp.sh: gst-launch-1.0 is missing (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good)" >&2; exit 1; }
[ -f "$image" ] || { echo "bench/rtp.sh: no image $image" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$repo/target}"
(cd "$repo" && cargo build --release -q -p pixgram-cli)
bin="$target/release/pixgram"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
read -r w h < <(python3 - "$image" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
i = 2
while i < len(b):
    m, l = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1):
        h, w = struct.unpack(">HH", b[i + 5:i + 9]); print(w, h); break
    i += 2 + l
PY
)
port=$((20000 + RANDOM % 20000 / 2 * 2))
now() { date +%s.%N; }

pixgram_run() {
    local log="$work/pixgram-recv.log"
    timeout 120 "$bin" recv --rtp --listen "127.0.0.1:$port" --recv-buffer "$buffer" --quiet --duration 110 2>"$log" &
    local rx=$!
    sleep 0.5
    local t0 t1
    t0=$(now)
    timeout 100 "$bin" send --rtp --to "127.0.0.1:$port" --mtu "$mtu" "${rate[@]}" \
        "$image" --loop "$frames" 2>"$work/pixgram-send.log" || true # exit 2: reported loss
    t1=$(now)
    sleep 0.5
    kill -INT "$rx"; wait "$rx" || true
    local got
    got=$(grep -oE '^rtp: [0-9]+ frames' "$log" | grep -oE '[0-9]+')
    echo "pixgram $got $(echo "$t1 - $t0" | bc -l)"
}

gst_run() {
    local log="$work/gst-recv.log"
    timeout 120 gst-launch-1.0 udpsrc port="$port" buffer-size="$buffer" \
        caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26" \
        ! rtpjpegdepay ! fakesink silent=false -v >"$log" 2>&1 &
    local rx=$!
    sleep 1
    local t0 t1
    t0=$(now)
    timeout 100 gst-launch-1.0 -q multifilesrc location="$image" loop=true num-buffers="$frames" \
        caps="image/jpeg,framerate=30/1,width=$w,height=$h" ! rtpjpegpay mtu="$mtu" \
        ! udpsink host=127.0.0.1 port="$port" sync=false >/dev/null
    t1=$(now)
    sleep 0.5
    kill -INT "$rx"; wait "$rx" || true
    echo "gstreamer $(grep -c 'last-message = chain' "$log") $(echo "$t1 - $t0" | bc -l)"
}

echo "image $image (${w}x${h}, $(stat -c %s "$image") bytes), $frames frames per run, mtu $mtu, receive buffers $buffer bytes, $reps reps"
: >"$work/runs"
for r in $(seq "$reps"); do
    pixgram_run | tee -a "$work/runs"
    gst_run | tee -a "$work/runs"
done
python3 - "$work/runs" "$frames" <<'PY'
import statistics, sys
runs, frames = {}, int(sys.argv[2])
for line in open(sys.argv[1]):
    name, got, secs = line.split()
    runs.setdefault(name, []).append((int(got), float(secs)))
med = {}
print("| sender -> receiver | frames/s (median, min-max) | frames lost of %d (median, max) |" % frames)
print("|---|---|---|")
for name, rs in runs.items():
    fps = [g / s for g, s in rs]
    lost = [frames - g for g, _ in rs]
    med[name] = statistics.median(fps)
    print("| %s | %.0f (%.0f-%.0f) | %d (%d) |" % (name, med[name], min(fps), max(fps), statistics.median(lost), max(lost)))
if "gstreamer" in med and med["gstreamer"] > 0:
    print("ratio pixgram/gstreamer (medians): %.2f" % (med["pixgram"] / med["gstreamer"]))
PY
