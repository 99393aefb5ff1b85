#!/usr/bin/env bash
# A reliable send through a real kernel bottleneck either delivers everything or says what it
# did not: two network namespaces joined by a veth pair, a token bucket (`tc ... tbf rate
# 4mbit burst 32kb latency 50ms`) on the sender's side, `pixgram recv --save` in one namespace
# and `pixgram send` of the corpus images in the other.
#
# Passes if send exits 0 and every image is saved byte-identical, or if send exits non-zero
# and names every image that is missing. Fails if send exits 0 with a file missing or
# different (a silent loss), or exits non-zero without naming what is missing.
#
# Needs root, `ip` and `tc` (iproute2); without them it says "SKIPPED: reason" and exits 0.
#
# Usage: scripts/netns-bottleneck-honest.sh [--bin PATH] [--rate RATE] [CORPUS_DIR]
#        (CORPUS_DIR defaults to ../shared/corpus beside the repository; RATE to 4mbit)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=""
rate=4mbit
corpus="$repo/../shared/corpus"
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) corpus="$1"; shift ;;
    esac
done
# shellcheck source=lib/netns.sh
. "$repo/scripts/lib/netns.sh"
netns_preflight netns-bottleneck-honest ip tc

images=()
if [ -d "$corpus" ]; then
    while IFS= read -r f; do images+=("$f"); done < <(find "$corpus" -maxdepth 1 -type f \
        \( -name '*.jpg' -o -name '*.png' \) | sort)
fi
[ ${#images[@]} -gt 0 ] || { echo "$me: no .jpg or .png images in $corpus" >&2; exit 2; }

netns_names bh
tx="$NETNS_TX"
rx="$NETNS_RX"
netns_tmpdir work
netns_create || skip "cannot create network namespaces here"
netns_link 10.78.0
netns_tbf "$rate" || skip "tc cannot add a tbf qdisc here"

total=${#images[@]}
bytes=$(cat "${images[@]}" | wc -c)
ip netns exec "$rx" timeout 200 "$bin" recv --listen 10.78.0.2:9000 --save "$work/out" \
    --count "$total" --duration 180 --quiet >"$work/recv.jsonl" 2>"$work/recv.err" &
recv_pid=$!
netns_track "$recv_pid"
for _ in $(seq 100); do
    grep -q "listening on" "$work/recv.err" 2>/dev/null && break
    sleep 0.05
done
grep -q "listening on" "$work/recv.err" || { echo "$me: recv did not start:"; cat "$work/recv.err"; exit 1; }

t0=$SECONDS
set +e
ip netns exec "$tx" timeout 170 "$bin" send --to 10.78.0.2:9000 "${images[@]}" 2>"$work/send.err"
rc=$?
set -e
took=$((SECONDS - t0))
[ "$rc" = 124 ] && { echo "$me: send hung (killed after 170 s):"; cat "$work/send.err"; exit 1; }
# Give the receiver a moment to write the last file, then stop it.
for _ in $(seq 40); do
    kill -0 "$recv_pid" 2>/dev/null || break
    sleep 0.1
done
kill -INT "$recv_pid" 2>/dev/null || true
wait "$recv_pid" 2>/dev/null || true
recv_pid=""

identical=0
missing=()
for orig in "${images[@]}"; do
    name="${orig##*/}"
    found=""
    for f in "$work"/out/*-"$name"; do
        [ -e "$f" ] || continue
        if cmp -s "$f" "$orig"; then found=1; break; fi
    done
    if [ -n "$found" ]; then identical=$((identical + 1)); else missing+=("$name"); fi
done
drops="$(netns_tbf_drops)"
echo "$me: $total images ($bytes bytes) through tbf $rate: send exit $rc after $took s;" \
    "$identical of $total saved identical; tbf dropped ${drops:-?} packets"
grep -E '^(sent|path|not delivered)' "$work/send.err" | sed "s/^/$me:   sender: /"

if [ "$rc" = 0 ]; then
    [ "$identical" = "$total" ] || {
        echo "$me: FAIL: send exited 0 but ${missing[*]} not saved identical (a silent loss)"
        cat "$work/send.err"; exit 1
    }
    echo "$me: ok (everything delivered)"
    exit 0
fi
unnamed=()
for name in "${missing[@]}"; do
    grep -q -F "$name" "$work/send.err" || unnamed+=("$name")
done
[ ${#missing[@]} -gt 0 ] || { echo "$me: FAIL: send exited $rc though every file arrived"; cat "$work/send.err"; exit 1; }
[ ${#unnamed[@]} = 0 ] || {
    echo "$me: FAIL: send exited $rc without naming ${unnamed[*]}"; cat "$work/send.err"; exit 1
}
echo "$me: ok (send exited $rc and named every missing file: ${missing[*]})"
