#!/usr/bin/env bash
# pixgram across a real kernel link with random loss: two network namespaces joined by a veth
# pair, nftables dropping datagrams at random on the way in (`numgen random mod 10000 < N`),
# `pixgram recv` in one namespace and `pixgram send` in the other.
#
#   1. reliable mode, corpus images at --loss percent (default 5) each way: every received
#      file must be byte-identical to the one sent;
#   2. live mode with 10% FEC at --live-loss percent (default 2): at least 99% of the frames
#      must arrive whole (the receiver never delivers a frame past its deadline);
#   3. live mode with --fec auto at --auto-loss percent (default 5): parity follows the loss
#      the receiver reports, and at least 99% of the frames must arrive whole;
#   4. no loss but the sender's first HELLO (nftables drops the first 64-byte datagram): the
#      sender repeats it in 25 ms, and a live stream's first frame still arrives in time.
#
# This kernel has no netem, so there is no delay here; `pixgram impair` covers delay, jitter
# and reordering in user space. Needs root, `ip` (iproute2) and `nft` (nftables); without
# them it says why and exits 0.
#
# Usage: scripts/netns-loss.sh [--bin PATH] [--loss PCT] [--live-loss PCT] [--auto-loss PCT]
#                              [--frames N]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=""
loss=5
live_loss=2
auto_loss=5
frames=100
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --loss) loss="$2"; shift 2 ;;
    --live-loss) live_loss="$2"; shift 2 ;;
    --auto-loss) auto_loss="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
# shellcheck source=lib/netns.sh
. "$repo/scripts/lib/netns.sh"
netns_preflight netns-loss ip nft

netns_names l
tx="$NETNS_TX"
rx="$NETNS_RX"
netns_tmpdir work
netns_create || skip "cannot create network namespaces here"
netns_link 10.77.0 gso1

# Random loss on the way in, in both namespaces: data to the receiver, replies to the sender.
set_loss() { netns_loss "$1" 10.77.0; }
dropped() { netns_dropped; }

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

# 2 and 3. Live mode with FEC: LOSS_PCT NAME FEC.
live_run() {
    local pct="$1" name="$2" fec="$3"
    set_loss "$pct"
    start_recv "$work/$name" --duration 30 --count "$total"
    ip netns exec "$tx" timeout 60 "$bin" send --to 10.77.0.2:9000 --mode live --fps 30 \
        --fec "$fec" --loop "$loops" "${images[@]}" 2>"$work/$name-send.err" ||
        { echo "netns-loss: live send (--fec $fec) failed:"; cat "$work/$name-send.err"; exit 1; }
    sleep 1
    kill -INT "$recv_pid" 2>/dev/null || true
    wait "$recv_pid" || true
    whole="$(grep -c '"event":"frame"' "$work/$name.jsonl" || true)"
    echo "netns-loss: live, ${pct}% kernel loss, --fec $fec: $whole of $total frames whole and" \
        "on time; nftables dropped $(dropped) datagrams"
    tail -n 1 "$work/$name.err" | sed 's/^/netns-loss:   receiver /'
    tail -n 1 "$work/$name-send.err" | sed 's/^/netns-loss:   sender /'
    [ $((whole * 100)) -ge $((total * 99)) ] ||
        { echo "netns-loss: --fec $fec at ${pct}% loss: fewer than 99% whole"; exit 1; }
}
live_run "$live_loss" live 10
live_run "$auto_loss" live-auto auto

# 4. The first HELLO lost, nothing else: 64 bytes of UDP payload (udp length 72); the quota
# counts IP lengths (92), so one of 100 bytes drops one datagram. The HELLO with the token is
# also 64 bytes, and passes. Before HELLOs were repeated after 25 ms, this lost the first frame.
set_loss 0
ip netns exec "$rx" nft add rule inet impair in udp dport 9000 udp length 72 \
    quota until 100 bytes counter drop
start_recv "$work/hello" --duration 10 --count 10
ip netns exec "$tx" timeout 20 "$bin" send --to 10.77.0.2:9000 --mode live --fps 30 \
    --loop 10 "${images[0]}" 2>"$work/hello-send.err" ||
    { echo "netns-loss: live send after a lost HELLO failed:"; cat "$work/hello-send.err"; exit 1; }
wait "$recv_pid" || true
whole="$(grep -c '"event":"frame"' "$work/hello.jsonl" || true)"
lost_hellos="$(dropped)"
echo "netns-loss: the first HELLO lost ($lost_hellos datagram dropped): $whole of 10 live frames" \
    "whole and on time"
[ "$lost_hellos" = 1 ] || { echo "netns-loss: nftables dropped $lost_hellos datagrams, not 1"; exit 1; }
[ "$whole" = 10 ] || { echo "netns-loss: a lost HELLO cost frames:"; cat "$work/hello-send.err"; exit 1; }
echo "netns-loss: ok"
