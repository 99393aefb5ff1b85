# shellcheck shell=bash
# Two network namespaces joined by a veth pair, for the scripts that run pixgram across a real
# kernel link (scripts/netns-loss.sh, scripts/netns-bottleneck-honest.sh, scripts/bottleneck.sh,
# bench/veth.sh, bench/bottleneck.sh). Source it, then:
#
#   netns_names PREFIX      names for this run: $NETNS_TX and $NETNS_RX (namespaces),
#                           $NETNS_TX_DEV and $NETNS_RX_DEV (the veth ends), all carrying
#                           $NETNS_TAG (the script's PID and a random byte), so two scripts,
#                           or one twice, can run at once without colliding
#   netns_create            adds both namespaces and arms the EXIT trap; fails (for the caller
#                           to skip) where namespaces cannot be made
#   netns_link SUBNET [gso1] the veth pair, SUBNET.1 on the sender's side and SUBNET.2 on the
#                           receiver's, loopbacks and links up; gso1: one packet per segment
#   netns_tbf RATE          tc tbf at RATE (burst 32kb, latency 50ms) on the sender's end,
#                           added or replaced; netns_tbf_drops prints what it dropped
#   netns_loss PCT SUBNET   nftables random loss on the way in, in both namespaces;
#                           netns_dropped prints what it dropped
#   netns_tmpdir VAR        a scratch directory, removed on exit, in $VAR
#   netns_track PID         a process killed on exit (every process left in the namespaces
#                           is killed too)
#   netns_preflight ME TOOL...  before any of these: $bin (given, else target/release, else
#                           target/debug under $repo) must be a pixgram binary (exit 2), and
#                           the run needs root and each TOOL (else `skip`: says why, exit 0);
#                           defines `skip REASON` for the script's own checks, prefixed by ME
#
# On exit the trap kills, deletes and removes what the run made, and nothing else.

netns_preflight() {
    me="$1"
    shift
    : "${repo:?netns_preflight needs \$repo, the checkout}"
    if [ -z "${bin:-}" ]; then
        bin="$repo/target/release/pixgram"
        [ -x "$bin" ] || bin="$repo/target/debug/pixgram"
    fi
    [ -x "$bin" ] || { echo "$me: no pixgram binary at $bin (cargo build --release first)" >&2; exit 2; }
    skip() { echo "$me: SKIPPED: $*"; exit 0; }
    [ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
    local tool package
    for tool in "$@"; do
        case "$tool" in
        ip | tc) package=iproute2 ;;
        nft) package=nftables ;;
        *) package="$tool" ;;
        esac
        command -v "$tool" >/dev/null || skip "$tool ($package) is not installed"
    done
}

NETNS_PIDS=()
NETNS_TMP=()

netns_names() {
    NETNS_TAG="$$$(printf '%02x' $((RANDOM % 256)))"
    NETNS_TX="pg${1}tx$NETNS_TAG"
    NETNS_RX="pg${1}rx$NETNS_TAG"
    # Interface names: at most 15 bytes (2 + 1 + 7 digits + 2 hex).
    NETNS_TX_DEV="${1:0:2}t$NETNS_TAG"
    NETNS_RX_DEV="${1:0:2}r$NETNS_TAG"
}

netns_cleanup() {
    local p ns
    for p in "${NETNS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for ns in "$NETNS_TX" "$NETNS_RX"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    for p in "${NETNS_TMP[@]}"; do rm -rf "$p"; done
}

netns_create() {
    trap netns_cleanup EXIT
    ip netns add "$NETNS_TX" 2>/dev/null || return 1
    ip netns add "$NETNS_RX" 2>/dev/null || return 1
}

netns_link() {
    local subnet="$1" ns
    ip link add "$NETNS_TX_DEV" type veth peer name "$NETNS_RX_DEV"
    ip link set "$NETNS_TX_DEV" netns "$NETNS_TX"
    ip link set "$NETNS_RX_DEV" netns "$NETNS_RX"
    ip -n "$NETNS_TX" addr add "$subnet.1/24" dev "$NETNS_TX_DEV"
    ip -n "$NETNS_RX" addr add "$subnet.2/24" dev "$NETNS_RX_DEV"
    for ns in "$NETNS_TX" "$NETNS_RX"; do ip -n "$ns" link set lo up; done
    if [ "${2:-}" = gso1 ]; then
        # One packet per segment on the veth, as on a physical wire: pixgram sends runs of
        # datagrams with UDP GSO, and a veth hands such a run to the other namespace whole
        # (netfilter sees one 64 KB packet), so one random drop would take up to 54
        # datagrams at once instead of one. gso_max_segs 1 makes the kernel segment before
        # the veth, and the loss stays per datagram.
        ip -n "$NETNS_TX" link set "$NETNS_TX_DEV" gso_max_segs 1
        ip -n "$NETNS_RX" link set "$NETNS_RX_DEV" gso_max_segs 1
    fi
    ip -n "$NETNS_TX" link set "$NETNS_TX_DEV" up
    ip -n "$NETNS_RX" link set "$NETNS_RX_DEV" up
}

netns_tbf() {
    tc -n "$NETNS_TX" qdisc replace dev "$NETNS_TX_DEV" root tbf rate "$1" burst 32kb latency 50ms
}

netns_tbf_drops() {
    tc -n "$NETNS_TX" -s qdisc show dev "$NETNS_TX_DEV" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' |
        head -n 1
}

netns_loss() {
    local pct="$1" subnet="$2" per10k ns
    per10k="$(python3 -c "print(round($pct * 100))")"
    for ns in "$NETNS_TX" "$NETNS_RX"; do
        ip netns exec "$ns" nft delete table inet impair 2>/dev/null || true
        ip netns exec "$ns" nft add table inet impair
        ip netns exec "$ns" nft add chain inet impair in '{ type filter hook input priority 0; }'
        ip netns exec "$ns" nft add rule inet impair in ip saddr "$subnet.0/24" udp dport '!=' 0 \
            numgen random mod 10000 '<' "$per10k" counter drop
    done
}

netns_dropped() {
    local total=0 n ns
    for ns in "$NETNS_TX" "$NETNS_RX"; do
        for n in $(ip netns exec "$ns" nft list table inet impair |
            sed -n 's/.*counter packets \([0-9]*\).*/\1/p'); do
            total=$((total + n))
        done
    done
    echo "$total"
}

netns_tmpdir() {
    local d
    d="$(mktemp -d)"
    NETNS_TMP+=("$d")
    printf -v "$1" '%s' "$d"
}

netns_track() {
    NETNS_PIDS+=("$1")
}
