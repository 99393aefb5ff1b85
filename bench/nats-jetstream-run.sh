#!/usr/bin/env bash
# Issue 17: one timed run of cameras into `pixgram recv --publish URL --jetstream`, no workers:
# 4 cameras x N frames of FILE into BIN's recv until it has them all (--count), each run on a
# fresh subject prefix and stream (S_TAG), and a check that its summary says every frame was
# stored. Made to be timed from outside, paired against another build, e.g.
#   farm-bench -n 8 --timeout 900 --vs "bash bench/nats-jetstream-run.sh OLD URL FILE 1500" \
#       -- bash bench/nats-jetstream-run.sh NEW URL FILE 1500
# with a nats-server (JetStream on, max_payload above the frame) already listening at URL.
#
#   bash bench/nats-jetstream-run.sh BIN URL FILE N
set -euo pipefail
bin="$1" url="$2" file="$3" n="$4"
tag="r$RANDOM$RANDOM"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
timeout 120 "$bin" recv --listen 127.0.0.1:$port --publish "$url" --subject "$tag" --jetstream "S_$tag" \
    --quiet --count $((4 * n)) --duration 100 >/dev/null 2>"$log" &
for _ in $(seq 200); do grep -q "listening on" "$log" && break; sleep 0.02; done
for i in 1 2 3 4; do timeout 100 "$bin" send --to 127.0.0.1:$port "$file" --loop "$n" >/dev/null 2>&1 & done
wait
grep -q "published $((4 * n)) frames" "$log" || { cat "$log" >&2; exit 1; }
rm -f "$log"
