#!/usr/bin/env bash
# pixgram across a real kernel link with random loss: two network namespaces joined by a veth
# pair, nftables dropping datagrams at random on the way in (`numgen random mod 10000 < N`),
# `pixgram recv` in one namespace and `pixgram send` in the other.
#
#   1. reliable mode, corpus images at --loss percent (default 5) each way: every received
#      file must be byte-identical to the one sent;
#   2. live mode with 10% FEC at --live-loss percent (default 2): at least 99% of the frames
#      must arrive whole (the receiver never delivers a frame past its deadline).
#
# This kernel has no netem, so there is no delay here; `pixgram impair` covers delay, jitter
# and reordering in user space. Needs root, `ip` (iproute2) and `nft` (nftables); without
# them it says why and exits 0.
#
# Usage: scripts/netns-loss.sh [--bin PATH] [--loss PCT] [--live-loss PCT] [--frames N]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=""
loss=5
live_loss=2
frames=100
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --loss) loss="$2"; shift 2 ;;
    --live-loss) live_loss="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$bin" ]; then
    bin="$repo/target/release/pixgram"
    [ -x "$bin" ] || bin="$repo/target/debug/pixgram"
fi
[ -x "$bin" ] || { echo "netns-loss: no pixgram binary at $bin (cargo build --release first)" >&2; exit 2; }

skip() { echo "netns-loss: SKIPPED: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v nft >/dev/null || skip "nft (nftables) is not installed"

tag="$$"
tx="pgtx$tag"
rx="pgrx$tag"
work="$(mktemp -d)"
cleanup() {
    ip netns del "$tx" 2>/dev/null || true
    ip netns del "$rx" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$tx" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$rx"
ip link add "vt$tag" type veth peer name "vr$tag"
ip link set "vt$tag" netns "$tx"
ip link set "vr$tag" netns "$rx"
ip -n "$tx" addr add 10.77.0.1/24 dev "vt$tag"
ip -n "$rx" addr add 10.77.0.2/24 dev "vr$tag"
for ns in "$tx" "$rx"; do
    ip -n "$ns" link set lo up
done
# One packet per segment on the veth, as on a physical wire: pixgram sends runs of datagrams
# with UDP GSO, and a veth hands such a run to the other namespace whole (netfilter sees one
# 64 KB packet), so one random drop below would take up to 54 datagrams at once instead of
# one. gso_max_segs 1 makes the kernel segment before the veth, and the loss stays per
# datagram, which is what this script measures.
ip -n "$tx" link set "vt$tag" gso_max_segs 1
ip -n "$rx" link set "vr$tag" gso_max_segs 1
ip -n "$tx" link set "vt$tag" up
ip -n "$rx" link set "vr$tag" up

# Random loss on the way in, in both namespaces: data to the receiver, replies to the sender.
set_loss() {
    local pct="$1" per10k
    per10k="$(python3 -c "print(round($pct * 100))")"
    for ns in "$tx" "$rx"; do
        ip netns exec "$ns" nft delete table inet impair 2>/dev/null || true
        ip netns exec "$ns" nft add table inet impair
        ip netns exec "$ns" nft add chain inet impair in '{ type filter hook input priority 0; }'
        ip netns exec "$ns" nft add rule inet impair in ip saddr 10.77.0.0/24 udp dport '!=' 0 \
            numgen random mod 10000 '<' "$per10k" counter drop
    done
}
dropped() {
    local total=0 n ns
    for ns in "$tx" "$rx"; do
        n="$(ip netns exec "$ns" nft list table inet impair | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')"
        total=$((total + ${n:-0}))
    done
    echo "$total"
}

# Images: the corpus's JPEGs up to 500 KB, or generated files.
images=()
if [ -d "$repo/../shared/corpus" ]; then
    while IFS= read -r f; do images+=("$f"); done < <(find "$repo/../shared/corpus" -maxdepth 1 \
        -name '*.jpg' -size -500k | sort)
fi
if [ ${#images[@]} -eq 0 ]; then
    for i in 1 2 3 4; do
        head -c $((i * 70000)) /dev/urandom >"$work/gen$i.bin"
        images+=("$work/gen$i.bin")
    done
fi
loops=$(((frames + ${#images[@]} - 1) / ${#images[@]}))
total=$((loops * ${#images[@]}))

start_recv() { # OUTPUT_PREFIX ARGS...
    local out="$1"; shift
    ip netns exec "$rx" "$bin" recv --listen 10.77.0.2:9000 "$@" >"$out.jsonl" 2>"$out.err" &
    recv_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$out.err" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "netns-loss: recv did not start:"; cat "$out.err"; exit 1
}

# 1. Reliable mode.
set_loss "$loss"
start_recv "$work/reliable" --save "$work/out" --count "$total" --duration 120 --quiet
t0=$SECONDS
ip netns exec "$tx" timeout 150 "$bin" send --to 10.77.0.2:9000 --loop "$loops" "${images[@]}" \
    2>"$work/send.err" || { echo "netns-loss: send failed:"; cat "$work/send.err"; exit 1; }
wait "$recv_pid" || { echo "netns-loss: recv failed:"; cat "$work/reliable.err"; exit 1; }
received=0
for f in "$work"/out/*; do
    name="${f##*/}"
    name="${name#*-*-*-}" # <session>-<stream>-<frame>-<name>
    for orig in "${images[@]}"; do
        if [ "${orig##*/}" = "$name" ]; then
            cmp -s "$f" "$orig" || { echo "netns-loss: $f differs from $orig"; exit 1; }
            received=$((received + 1))
        fi
    done
done
[ "$received" = "$total" ] || { echo "netns-loss: $received of $total frames saved"; cat "$work/reliable.err"; exit 1; }
echo "netns-loss: reliable, ${loss}% kernel loss each way: $total of $total frames identical" \
    "in $((SECONDS - t0)) s; nftables dropped $(dropped) datagrams"
tail -n 1 "$work/send.err" | sed 's/^/netns-loss:   sender /'

# 2. Live mode with FEC.
set_loss "$live_loss"
start_recv "$work/live" --duration 30 --count "$total"
ip netns exec "$tx" timeout 60 "$bin" send --to 10.77.0.2:9000 --mode live --fps 30 --fec 10 \
    --loop "$loops" "${images[@]}" 2>"$work/live-send.err" ||
    { echo "netns-loss: live send failed:"; cat "$work/live-send.err"; exit 1; }
sleep 1
kill -INT "$recv_pid" 2>/dev/null || true
wait "$recv_pid" || true
whole="$(grep -c '"event":"frame"' "$work/live.jsonl" || true)"
echo "netns-loss: live, ${live_loss}% kernel loss, 10% FEC: $whole of $total frames whole and on time;" \
    "nftables dropped $(dropped) datagrams"
tail -n 1 "$work/live.err" | sed 's/^/netns-loss:   receiver /'
[ $((whole * 100)) -ge $((total * 99)) ] || { echo "netns-loss: fewer than 99% whole"; exit 1; }
echo "netns-loss: ok"
