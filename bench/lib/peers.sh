# shellcheck shell=bash
# Shared by bench/compare.sh, bench/sizes.sh and bench/loopback.sh: one run of pixgram or of a peer on loopback,
# each printing "frames/s MB/s" (or "nan nan"), and the peers' installation. Source it after
# setting these globals (the caller owns them and its EXIT trap kills what is in `started`):
#   repo      the repository root
#   work      a scratch directory (logs, the udpblast binary, a key)
#   seconds   how long one peer run lasts
#   started   an array; every background process started here is appended to it
# and, for pixgram_run, optionally KEYED=1 in the environment (then $work/key must exist).
# Every process runs under `timeout`; every address is 127.0.0.1.
# shellcheck disable=SC2154   # repo, work, seconds are the caller's

# The address a `pixgram recv --listen 127.0.0.1:0` writing its messages to LOG listens on,
# once it has said so (up to 5 s); empty if it never did.
listening_address() {
    local log="$1" addr=""
    for _ in $(seq 100); do
        addr="$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -1)"
        [ -n "$addr" ] && break
        sleep 0.05
    done
    echo "$addr"
}

# A scratch directory in $work and an empty `started`; on exit every process in `started` is
# killed and the directory removed.
bench_workdir() {
    work="$(mktemp -d)"
    started=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}

# $bin if set, else the working tree's release build (built now).
bench_binary() {
    if [ -z "${bin:-}" ]; then
        echo "== build (release) of the working tree" >&2
        (cd "$repo" && cargo build --release -q -p pixgram-cli)
        bin="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
    fi
}

# pip install the Python peers unless they import, when $1 is 1; fail if they still do not.
install_peers() {
    if [ "$1" = 1 ] && ! python3 -c "import zmq, imagezmq, numpy, zenoh" 2>/dev/null; then
        echo "== pip install imagezmq pyzmq numpy eclipse-zenoh" >&2
        python3 -m pip install -q imagezmq pyzmq numpy eclipse-zenoh
    fi
    python3 -c "import zmq, imagezmq, numpy, zenoh" ||
        { echo "the Python peers are missing: python3 -m pip install imagezmq pyzmq numpy eclipse-zenoh" >&2; exit 2; }
    gcc -O2 -pthread -o "$work/udpblast" "$repo/bench/peers/udpblast.c"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# "frames/s MB/s" from a line "... N frames, X MB in T s: F frames/s, M MB/s" in file $1
# (the last such line starting with $2), or "nan nan".
parse() {
    python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
m = re.findall(sys.argv[2] + r" \d+ (?:frames|datagrams), [\d.]+ MB in [\d.]+ s: ([\d.]+) (?:frames|datagrams)/s, ([\d.]+) MB/s", text)
print(*(m[-1] if m else ("nan", "nan")))
PY
}

# pixgram: recv --count N, send --loop N ARGS... FILE; prints "frames/s MB/s" (the sender's).
pixgram_run() {
    local b="$1" n="$2" file="$3"
    shift 3
    local keyargs=()
    [ "${KEYED:-0}" = 1 ] && keyargs=(--key-file "$work/key")
    : >"$work/recv.err"
    timeout -k 1 60 "$b" recv --listen 127.0.0.1:0 --count "$n" --quiet "${keyargs[@]}" \
        >/dev/null 2>"$work/recv.err" &
    local rpid=$!
    started+=("$rpid")
    local addr
    addr="$(listening_address "$work/recv.err")"
    timeout -k 1 60 "$b" send --to "$addr" --loop "$n" "${keyargs[@]}" "$@" "$file" \
        >/dev/null 2>"$work/send.err" || true
    wait "$rpid" 2>/dev/null || true
    parse "$work/send.err" sent
}

zmq_reqrep_run() {
    local file="$1"
    : >"$work/srv.err"
    timeout -k 1 60 python3 "$repo/bench/peers/imagezmq_reqrep.py" server --listen '127.0.0.1:*' \
        >/dev/null 2>"$work/srv.err" &
    local spid=$!
    started+=("$spid")
    local addr=""
    for _ in $(seq 100); do
        addr="$(sed -n 's/.*listening on \([^ ]*:[0-9]*\).*/\1/p' "$work/srv.err" | head -1)"
        [ -n "$addr" ] && break
        sleep 0.05
    done
    timeout -k 1 60 python3 "$repo/bench/peers/imagezmq_reqrep.py" client --to "$addr" \
        --loop 100000000 --max-seconds "$seconds" "$file" >/dev/null 2>"$work/cli.err" || true
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    parse "$work/cli.err" sent
}

# A pub/sub peer: subscriber first, then the publisher for --seconds; the subscriber's figures.
pubsub_run() {
    local script="$1" file="$2"
    local port
    port="$(free_port)"
    timeout -k 1 60 python3 "$repo/bench/peers/$script" sub --at "127.0.0.1:$port" \
        >/dev/null 2>"$work/sub.err" &
    local spid=$!
    started+=("$spid")
    sleep 0.3
    timeout -k 1 60 python3 "$repo/bench/peers/$script" pub --at "127.0.0.1:$port" \
        --max-seconds "$seconds" "$file" >/dev/null 2>"$work/pub.err" || true
    wait "$spid" 2>/dev/null || true
    parse "$work/sub.err" received
}

# The UDP GSO+GRO limit for segments of $1 bytes (default 1200), received figures.
blast_run() {
    timeout -k 1 60 "$work/udpblast" "${1:-1200}" "$seconds" 2>"$work/blast.err" >/dev/null || true
    parse "$work/blast.err" received
}
