#!/usr/bin/env bash
# pixgram across a veth pair between two network namespaces, beside iperf3 TCP on the same veth
# in the same rounds (issue 13, target 6): for each MTU (default 1500 and 9000), R rounds of
# iperf3 -t S, then `pixgram send --loop N` of the 1080p corpus JPEG at default flags to `recv
# --count N --quiet`. Prints the medians and pixgram / iperf3. Needs root, ip and iperf3
# (apt-get install iperf3); without them it says why and exits 0.
#
# Usage: bench/veth.sh [--bin PATH] [--reps R] [--seconds S] [--frames N] [MTU...]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
reps=3
secs=2
frames=3000
mtus=()
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --seconds) secs="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) mtus+=("$1"); shift ;;
    esac
done
[ ${#mtus[@]} -gt 0 ] || mtus=(1500 9000)
skip() { echo "veth: SKIPPED: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v iperf3 >/dev/null || skip "iperf3 is not installed (apt-get install iperf3)"
[ -x "$bin" ] || { echo "veth: no pixgram binary at $bin" >&2; exit 2; }
photo="$repo/../shared/corpus/fallenleaf_1920x1080.jpg"
# shellcheck source=../scripts/lib/netns.sh
. "$repo/scripts/lib/netns.sh"
netns_names ve
tx="$NETNS_TX"
rx="$NETNS_RX"
netns_tmpdir work
netns_create || skip "cannot create network namespaces here"
netns_link 10.78.0
ip netns exec "$rx" iperf3 -s -D -B 10.78.0.2 -p 5201 --logfile "$work/iperf3.log"
sleep 0.3

printf 'mtu\tround\tiperf3_MBps\tpixgram_MBps\n' >"$work/results.tsv"
for mtu in "${mtus[@]}"; do
    ip -n "$tx" link set "$NETNS_TX_DEV" mtu "$mtu"
    ip -n "$rx" link set "$NETNS_RX_DEV" mtu "$mtu"
    for r in $(seq "$reps"); do
        tcp="$(ip netns exec "$tx" iperf3 -c 10.78.0.2 -p 5201 -t "$secs" -J |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8e6)')"
        ip netns exec "$rx" timeout 60 "$bin" recv --listen 10.78.0.2:9000 --count "$frames" --quiet \
            >/dev/null 2>"$work/recv.err" &
        rpid=$!
        for _ in $(seq 100); do grep -q "listening on" "$work/recv.err" && break; sleep 0.05; done
        ip netns exec "$tx" timeout 60 "$bin" send --to 10.78.0.2:9000 --loop "$frames" "$photo" \
            >/dev/null 2>"$work/send.err" || true
        wait "$rpid" || true
        pix="$(sed -n 's/.*frames\/s, \([0-9.]*\) MB\/s.*/\1/p' "$work/send.err" | head -1)"
        printf '%s\t%s\t%s\t%s\n' "$mtu" "$r" "$tcp" "${pix:-nan}" >>"$work/results.tsv"
        printf 'veth: MTU %s round %s: iperf3 %.0f MB/s, pixgram %s MB/s\n' "$mtu" "$r" "$tcp" "${pix:-failed}"
    done
done
python3 - "$work/results.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("| MTU | pixgram send (default flags) | iperf3 TCP | ratio |")
print("|---:|---:|---:|---:|")
for mtu in sorted({r["mtu"] for r in rows}, key=int):
    p = statistics.median(float(r["pixgram_MBps"]) for r in rows if r["mtu"] == mtu)
    t = statistics.median(float(r["iperf3_MBps"]) for r in rows if r["mtu"] == mtu)
    print(f"| {mtu} | {p:,.0f} MB/s | {t:,.0f} MB/s | {p / t:.2f}x |")
PY
