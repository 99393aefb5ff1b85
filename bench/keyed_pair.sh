#!/usr/bin/env bash
# One timed run for issue 13 target 5 (a key's cost): `recv --count N --quiet` in the
# background, then `send --loop N` of one JPEG at default flags, both with the extra flags
# given (e.g. --key-file K); exits when the receiver has every frame. Time it with farm-bench,
# keyed against plain, pairs A B A B:
#   farm-bench -n 15 --timeout 300 --vs "bash bench/keyed_pair.sh BIN 9771" -- \
#       bash bench/keyed_pair.sh BIN 9772 --key-file KEY
# Usage: bench/keyed_pair.sh BIN PORT [FLAGS...]   (env: FRAMES=3000, JPEG=the 1080p corpus photo)
set -euo pipefail
bin="$1" port="$2"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
jpeg="${JPEG:-$here/../../shared/corpus/bythewater_1920x1080.jpg}"
frames="${FRAMES:-3000}"
"$bin" recv --listen "127.0.0.1:$port" --quiet --count "$frames" "$@" >/dev/null 2>&1 &
rx=$!
for _ in $(seq 100); do
    ss -uln | grep -q ":$port " && break
    sleep 0.02
done
"$bin" send --to "127.0.0.1:$port" --loop "$frames" "$@" "$jpeg" >/dev/null 2>&1
wait "$rx"
