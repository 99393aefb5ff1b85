#!/usr/bin/env bash
# Issue 17 part 2: a hub isolates its subscribers, measured across real kernel links.
#
# Six network namespaces: a publisher (P), the hub (H), and four subscribers (S1-S4), each on
# a veth pair of its own to H. S3's link has a 4 Mbit/s token bucket (tbf) on the hub's side.
#   phase A (no subscribers): P sends --pattern 1920x1080 at 30 fps straight to a plain
#            `pixgram recv` in H: the publisher's frame rate and RTT, and the direct one-way
#            latency (the receiver's "network and queues" figure).
#   phase B: the same stream into `pixgram hub` in H; S1 and S2 subscribe for every frame,
#            S3 (behind 4 Mbit/s) for the latest frame, S4 for every frame and is killed with
#            SIGKILL after 3 s (no UNSUBSCRIBE).
# Passes when: S1 and S2 got every frame the hub received; their one-way latency p99 is within
# --latency-margin ms (default 50: a hub that let the 4 Mbit/s subscriber hold the others back
# would put them near its 150-250 ms) of the hub's own receiver's for the same frames (a direct
# `pixgram recv`: the same code); S3 got whole frames only (each a complete JPEG) and fewer
# than were sent (latest wins); the publisher delivered as many frames with subscribers as
# without (within 2%), at the same frame rate (within 5%) and an RTT p50 at most 2 ms higher
# (p99 printed: on a busy 2-core machine it moves with scheduling, hub or not);
# and S4 received at most 5 datagrams after its keepalive expired (its veth counter). The
# issue's latency target, within 2 ms, is reported as met or missed but not enforced: on a
# quiet machine it is met in most runs (7 of 8 at 33fe079, 7 of 7 at 2207ee1: docs/BENCHMARKS.md),
# but the p99 of a 240-frame run moves with the scheduling of six processes on two cores by
# more than that, and on a loaded CI machine by tens of milliseconds.
# Every figure is printed. About 30 s.
#
# Needs root and `ip`, `tc` (iproute2); without them it says "SKIPPED: reason" and exits 0.
#
# Usage: scripts/netns-hub.sh [--bin PATH] [--frames N] [--latency-margin MS]
#        (N frames per phase, default 240: 8 s)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=""
frames=240
margin=50
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --latency-margin) margin="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
# shellcheck source=lib/netns.sh
. "$repo/scripts/lib/netns.sh"
me=netns-hub
netns_preflight "$me" ip tc python3

# The library makes two namespaces (the publisher's and the hub's, one veth pair); the four
# subscribers' are made here, and removed by the same trap.
netns_names hb
pub="$NETNS_TX"
hub="$NETNS_RX"
subs=()
for i in 1 2 3 4; do subs+=("pghbs$i$NETNS_TAG"); done
cleanup() {
    local ns
    for ns in "${subs[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    netns_cleanup
}
netns_tmpdir work
netns_create || skip "cannot create network namespaces here"
trap cleanup EXIT
netns_link 10.79.0
for i in 1 2 3 4; do
    ns="${subs[$((i - 1))]}"
    ip netns add "$ns" || skip "cannot create network namespaces here"
    hd="hbh$i$NETNS_TAG"
    sd="hbs$i$NETNS_TAG"
    ip link add "${hd:0:15}" type veth peer name "${sd:0:15}"
    ip link set "${hd:0:15}" netns "$hub"
    ip link set "${sd:0:15}" netns "$ns"
    ip -n "$hub" addr add "10.79.$i.1/24" dev "${hd:0:15}"
    ip -n "$ns" addr add "10.79.$i.2/24" dev "${sd:0:15}"
    ip -n "$ns" link set lo up
    ip -n "$hub" link set "${hd:0:15}" up
    ip -n "$ns" link set "${sd:0:15}" up
done
slow_dev="hbh3$NETNS_TAG"
tc -n "$hub" qdisc replace dev "${slow_dev:0:15}" root tbf rate 4mbit burst 32kb latency 50ms ||
    skip "tc cannot add a tbf qdisc here"
s4_dev="hbs4$NETNS_TAG"
s4_dev="${s4_dev:0:15}"

wait_line() { # FILE TEXT: up to 5 s
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$me: no \"$2\" in $1:"
    cat "$1"
    exit 1
}
# FIELD from "latency, capture to arrival: p50 A ms p99 B ms; encode ...; network and queues
# p50 C ms p99 D ms": transit p99 (D).
transit_p99() { sed -n 's/.*network and queues p50 [0-9.]* ms p99 \([0-9.]*\) ms.*/\1/p' "$1" | tail -n 1; }
received() { sed -n 's/^received \([0-9]*\) frames.*/\1/p' "$1" | tail -n 1; }
sent_line() { grep -E '^sent [0-9]+ frames' "$1" | tail -n 1; }
acked() { sent_line "$1" | sed -n 's/.*acked \([0-9]*\),.*/\1/p'; }
fps() { sent_line "$1" | sed -n 's/.* s: \([0-9.]*\) frames\/s.*/\1/p'; }
rtt_p99() { sent_line "$1" | sed -n 's/.*RTT p50 [0-9.]* ms p99 \([0-9.]*\) ms.*/\1/p'; }
rtt_p50() { sent_line "$1" | sed -n 's/.*RTT p50 \([0-9.]*\) ms p99.*/\1/p'; }
publish() { # ADDR LOG
    ip netns exec "$pub" timeout 60 "$bin" send --to "$1" --pattern --size 1920x1080 --fps 30 \
        --count "$frames" >"$2.out" 2>"$2" || true
}

echo "$me: load average $(cut -d' ' -f1-3 /proc/loadavg); $frames frames of 1920x1080 at 30 fps per phase"

# Phase A: straight to a receiver, no hub, no subscribers.
ip netns exec "$hub" timeout 60 "$bin" recv --listen 10.79.0.2:9001 -q --duration 40 \
    >/dev/null 2>"$work/direct.err" &
direct_pid=$!
netns_track "$direct_pid"
wait_line "$work/direct.err" "listening on"
publish 10.79.0.2:9001 "$work/pubA.err"
ip netns pids "$hub" | xargs -r kill -INT 2>/dev/null || true
wait "$direct_pid" || true

# Phase B: through the hub, four subscribers.
ip netns exec "$hub" timeout 60 "$bin" hub --listen 0.0.0.0:9000 -q --duration 40 \
    --keepalive-timeout 2 >/dev/null 2>"$work/hub.err" &
hub_pid=$!
netns_track "$hub_pid"
wait_line "$work/hub.err" "hub listening on"
declare -a spid
for i in 1 2 3 4; do
    mode=()
    save=()
    [ "$i" = 3 ] && mode=(--latest) && save=(--save "$work/s3")
    ip netns exec "${subs[$((i - 1))]}" timeout 60 "$bin" recv --from "10.79.$i.1:9000" -q \
        --duration 16 "${mode[@]}" "${save[@]}" >/dev/null 2>"$work/s$i.err" &
    spid[i]=$!
    netns_track "${spid[i]}"
done
for i in 1 2 3 4; do wait_line "$work/s$i.err" "subscribed: "; done
publish 10.79.0.2:9000 "$work/pubB.err" &
pub_pid=$!
sleep 3
kill -9 "${spid[4]}"
ip netns pids "${subs[3]}" | xargs -r kill -9 2>/dev/null || true
# Keepalive timeout 2 s (the last KEEPALIVE may be up to 1 s older), then 1 s of margin.
sleep 4
rx_at_expiry=$(ip netns exec "${subs[3]}" cat "/sys/class/net/$s4_dev/statistics/rx_packets")
wait "$pub_pid" || true
for i in 1 2 3; do wait "${spid[i]}" || true; done
rx_at_end=$(ip netns exec "${subs[3]}" cat "/sys/class/net/$s4_dev/statistics/rx_packets")
ip netns pids "$hub" | xargs -r kill -INT 2>/dev/null || true
wait "$hub_pid" || true

set +e # every check runs and says ok or FAIL; the exit status sums them up
fail=0
check() { # CONDITION-STATUS TEXT
    if [ "$1" = 0 ]; then echo "$me: ok: $2"; else echo "$me: FAIL: $2"; fail=1; fi
}
le() { python3 -c "import sys; sys.exit(0 if float('$1') <= $2 else 1)"; }

a_acked=$(acked "$work/pubA.err")
b_acked=$(acked "$work/pubB.err")
echo "$me: publisher, direct: $(sent_line "$work/pubA.err")"
echo "$me: publisher, hub:    $(sent_line "$work/pubB.err")"
# A live sender loses a few frames to their deadline on a busy machine, hub or not (1-6 of 240
# in either phase at load 4-6): as many with subscribers as without within 2% of the frames,
# and at least 95% of them.
python3 -c "import sys; a, b = ${a_acked:-0}, ${b_acked:-0}; sys.exit(0 if b >= a - max(2, 0.02 * $frames) and min(a, b) >= 0.95 * $frames else 1)"
check $? "the publisher delivered as many frames with subscribers as without, within 2% ($b_acked and $a_acked of $frames)"
fa=$(fps "$work/pubA.err")
fb=$(fps "$work/pubB.err")
python3 -c "import sys; sys.exit(0 if abs($fb - $fa) <= 0.05 * $fa else 1)"
check $? "publisher frame rate with subscribers $fb frames/s, without $fa (within 5%)"
ra=$(rtt_p50 "$work/pubA.err")
rb=$(rtt_p50 "$work/pubB.err")
le "$rb" "$ra + 2"
check $? "publisher RTT p50 with subscribers $rb ms, without $ra ms (at most 2 ms more; p99 $(rtt_p99 "$work/pubB.err") and $(rtt_p99 "$work/pubA.err") ms)"

# The hub receives exactly as `pixgram recv` does (the same receiver and loop) and reports the
# same latency figure for the same frames in the same run: that is the direct receiver's p99.
# Phase A's separate receiver is printed too, but the publisher's own pacing (its bandwidth
# estimate) differs from run to run by more than 2 ms, so it is not the yardstick.
direct=$(transit_p99 "$work/hub.err")
direct_a=$(transit_p99 "$work/direct.err")
at_hub=$(sed -n 's/^hub: \([0-9]*\) frames and messages received.*/\1/p' "$work/hub.err")
for i in 1 2; do
    got=$(received "$work/s$i.err")
    [ "${got:-0}" = "${at_hub:-x}" ]
    check $? "S$i (every frame) received ${got:-0} of the ${at_hub:-?} frames the hub received"
    p99=$(transit_p99 "$work/s$i.err")
    le "${p99:-999}" "${direct:-0} + $margin"
    check $? "S$i one-way latency p99 ${p99:-n/a} ms, the hub's own receiver ${direct:-n/a} ms (within $margin ms; phase A's receiver ${direct_a:-n/a} ms)"
    if le "${p99:-999}" "${direct:-0} + 2"; then
        echo "$me: issue 17 target (within 2 ms) met for S$i"
    else
        echo "$me: issue 17 target (within 2 ms) MISSED for S$i: $(python3 -c "print(round(${p99:-999} - ${direct:-0}, 2))") ms over"
    fi
done

got3=$(received "$work/s3.err")
whole=$(python3 - "$work/s3" <<'EOF'
import os, sys
d = sys.argv[1]
names = os.listdir(d) if os.path.isdir(d) else []
ok = sum(1 for n in names
         if (lambda b: b[:2] == b"\xff\xd8" and b[-2:] == b"\xff\xd9")(open(os.path.join(d, n), "rb").read()))
print(f"{ok} {len(names)}")
EOF
)
read -r whole_ok whole_all <<<"$whole"
[ "${got3:-0}" -gt 0 ] && [ "$whole_ok" = "$whole_all" ] && [ "${got3:-0}" -lt "${at_hub:-0}" ]
check $? "S3 (latest frame, 4 Mbit/s) received ${got3:-0} frames of ${at_hub:-?}, $whole_ok of $whole_all saved files whole JPEGs"

after=$((rx_at_end - rx_at_expiry))
[ "$after" -le 5 ]
check $? "S4 (killed with SIGKILL): $after datagrams reached it after its keepalive expired (at most 5)"
grep -q "ended: Expired\|ended: Dropped" "$work/hub.err"
check $? "the hub ended S4's subscription: $(grep -o '[0-9]* expired (no KEEPALIVE)' "$work/hub.err")"

echo "$me: hub summary:"
grep -E '^(hub|subscriber) ' "$work/hub.err" | sed 's/^/  /'
for i in 1 2 3; do
    echo "$me: S$i: $(grep -E '^received ' "$work/s$i.err" | cut -c1-100); $(grep -E '^latency' "$work/s$i.err")"
done
echo "$me: hub's own receiver: $(grep -E '^latency' "$work/hub.err")"
echo "$me: phase A receiver: $(grep -E '^received ' "$work/direct.err" | cut -c1-100); $(grep -E '^latency' "$work/direct.err")"
if [ "$fail" != 0 ]; then
    for f in pubB hub s1 s3; do echo "--- $f"; tail -n 5 "$work/$f.err"; done
    exit 1
fi
echo "$me: PASS"
