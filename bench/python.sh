#!/usr/bin/env bash
# issue 15: pixgram's Python drop-in against real ImageZMQ, Python to Python on loopback, in
# the same run, interleaved, several rounds; medians and ratios.
#
#   bash bench/python.sh [--rounds N] [--jpeg PHOTO.jpg] [--frames N] [--seconds S]
#
# Builds the package (release) into a venv with imagezmq, pyzmq and numpy; set BENCH_VENV to
# reuse one. Default photo: the 1080p corpus JPEG (../shared/corpus beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
jpeg=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --jpeg) jpeg="$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -z "$jpeg" ]; then
    for c in ../shared/corpus /work/shared/corpus; do
        [ -f "$c/bythewater_1920x1080.jpg" ] && jpeg="$c/bythewater_1920x1080.jpg" && break
    done
fi
[ -n "$jpeg" ] && [ -f "$jpeg" ] || { echo "no photo: pass --jpeg PHOTO.jpg" >&2; exit 2; }
venv="${BENCH_VENV:-$(mktemp -d)/venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q imagezmq pyzmq numpy
"$venv/bin/pip" install -q --force-reinstall --no-deps ./crates/pixgram-py
echo "commit $(git rev-parse --short HEAD); load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" crates/pixgram-py/bench/compare.py --jpeg "$jpeg" "${args[@]}"
