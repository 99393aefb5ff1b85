#!/usr/bin/env bash
# Issue 12's table: pixgram reliable mode through a kernel drop-tail bottleneck, beside iperf3
# TCP through the same bottleneck in the same run. Two network namespaces joined by a veth
# pair, `tc qdisc replace dev VETH root tbf rate R burst 32kb latency 50ms` on the sender's
# side, at 2, 4, 20, 100 and 500 Mbit/s (the issue's command at every rate: at 500 Mbit/s a
# 32 KB bucket is less than one 4 ms jiffy's worth, which may cap what any flow gets).
#
# Per rate and run: `pixgram send` of the corpus JPEGs looped to about --seconds at the rate
# (goodput = acknowledged MB over its run, as send reports; retransmitted = "chunks
# retransmitted" over "datagrams"; queueing delay = the sender's smoothed RTT above its lowest
# at the end), then `iperf3 -c` alone for --seconds (receiver's Mbit/s). Prints a markdown
# table of medians over --reps runs and the raw lines to $out/raw.txt.
#
# Needs root, ip, tc and iperf3 (`apt-get install iperf3`); installs nothing.
#
# Usage: bench/bottleneck.sh [--reps 3] [--rates "2 4 20 100 500"] [--seconds 8] [--out DIR]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=3
rates="2 4 20 100 500"
seconds=8
out="$repo/target/bench-bottleneck"
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --rates) rates="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "bench/bottleneck.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in ip tc iperf3; do
    command -v "$tool" >/dev/null || { echo "bench/bottleneck.sh: $tool is not installed" >&2; exit 2; }
done

(cd "$repo" && cargo build --release -q -p pixgram-cli)
bin="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
images=()
while IFS= read -r f; do images+=("$f"); done < <(find "$repo/../shared/corpus" -maxdepth 1 \
    -name '*.jpg' 2>/dev/null | sort)
[ ${#images[@]} -gt 0 ] || { echo "no corpus images under ../shared/corpus" >&2; exit 2; }
corpus_bytes=$(cat "${images[@]}" | wc -c)
mkdir -p "$out"
: >"$out/raw.txt"

# shellcheck source=../scripts/lib/netns.sh
. "$repo/scripts/lib/netns.sh"
netns_names bb
tx="$NETNS_TX"
rx="$NETNS_RX"
netns_create || { echo "bench/bottleneck.sh: cannot create network namespaces" >&2; exit 2; }
netns_link 10.80.0

ip netns exec "$rx" timeout 3600 "$bin" recv --listen 10.80.0.2:9000 --quiet \
    >/dev/null 2>"$out/recv.err" &
netns_track $!
ip netns exec "$rx" timeout 3600 iperf3 -s -B 10.80.0.2 -p 5201 >/dev/null 2>&1 &
netns_track $!
for _ in $(seq 100); do
    grep -q "listening on" "$out/recv.err" 2>/dev/null && break
    sleep 0.05
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| bottleneck | pixgram goodput | share of the bottleneck | datagrams that were retransmissions | sender's queueing delay | iperf3 TCP, same bottleneck |"
echo "|---|---:|---:|---:|---:|---:|"
for mbit in $rates; do
    netns_tbf "${mbit}mbit"
    loops=$(awk -v m="$mbit" -v s="$seconds" -v b="$corpus_bytes" 'BEGIN { n = int(m * 1e6 / 8 * s / b + 0.999); print (n < 1 ? 1 : n) }')
    g=()
    r=()
    q=()
    t=()
    for rep in $(seq "$reps"); do
        ip netns exec "$tx" timeout 300 "$bin" send --to 10.80.0.2:9000 --loop "$loops" \
            "${images[@]}" 2>"$out/send.err" || true
        sed "s/^/$mbit Mbit\/s run $rep: /" "$out/send.err" | grep -E ': (sent|path)' >>"$out/raw.txt"
        g+=("$(sed -n 's/^sent [0-9]* frames, \([0-9.]*\) MB in \([0-9.]*\) s.*/\1 \2/p' "$out/send.err" | awk '{ printf "%.2f", $1 * 8 / $2 }')")
        r+=("$(sed -n 's/^path: .*chunks retransmitted (\([0-9.]*\)%).*/\1/p' "$out/send.err")")
        q+=("$(sed -n 's/^path: .*queueing delay \([0-9.]*\) ms.*/\1/p' "$out/send.err")")
        ip netns exec "$tx" timeout 60 iperf3 -c 10.80.0.2 -p 5201 -t "$seconds" -f m >"$out/tcp.out" 2>&1 || true
        t+=("$(awk '/receiver/ { v = $(NF - 2) } END { print v + 0 }' "$out/tcp.out")")
        echo "$mbit Mbit/s run $rep: iperf3 ${t[-1]} Mbit/s" >>"$out/raw.txt"
    done
    gm=$(printf '%s\n' "${g[@]}" | median)
    printf '| %s Mbit/s | %s Mbit/s | %s | %s%% | %s ms | %s Mbit/s |\n' "$mbit" "$gm" \
        "$(awk -v g="$gm" -v m="$mbit" 'BEGIN { printf "%.2fx", g / m }')" \
        "$(printf '%s\n' "${r[@]}" | median)" "$(printf '%s\n' "${q[@]}" | median)" \
        "$(printf '%s\n' "${t[@]}" | median)"
done
echo
echo "raw lines: $out/raw.txt"
