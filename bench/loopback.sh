#!/usr/bin/env bash
# Loopback throughput of `pixgram send`/`pixgram recv` against peers measured in the same run.
#
# For every image, for every repetition: pixgram with --window 1 (stop-and-wait) and 8
# (pipelined) at --datagram-size 1200 and 65507; then the original scripts' protocol
# (bench/peers/seed_stopwait.py, 4 MiB receive buffer, both as written with `data += chunk` and
# with a bytearray), and ImageZMQ REQ/REP (bench/peers/imagezmq_reqrep.py) if `import zmq,
# imagezmq` works. Each run sends the same image over and over for about --seconds; the figure
# is the sender's own "frames/s" (first send to last acknowledgement). The table shows medians
# over the repetitions and the ratios pixgram/peer of those medians.
#
# Usage: bench/loopback.sh [options] [IMAGE...]
#   --dir DIR         images to use (default: ../shared/corpus from the repo root)
#   --reps R          repetitions of every configuration (default 3)
#   --seconds S       length of one run (default 0.5)
#   --timeout T       any process still running after T seconds is killed (default 20)
#   --no-peers        pixgram only
#   --install-peers   first run: python3 -m pip install imagezmq pyzmq numpy
#   --out DIR         where results.tsv and table.md go (default target/bench-loopback)
#   --rev REV         measure the committed revision REV (e.g. HEAD), built from `git archive`
#                     in target/bench-src (default: the working tree as it is, edits included).
#                     Repeatable: several revisions are measured side by side in one run.
# Default run: 7 corpus images x 7 configurations x 3 = 147 runs, about 2 to 3 minutes.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="$repo/../shared/corpus"
reps=3
seconds=0.5
timeout_s=20
peers=1
install=0
out="$repo/target/bench-loopback"
revs=()
images=()
while [ $# -gt 0 ]; do
    case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --no-peers) peers=0; shift ;;
    --install-peers) install=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --rev) revs+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) images+=("$1"); shift ;;
    esac
done
if [ ${#images[@]} -eq 0 ]; then
    [ -d "$dir" ] || { echo "no images: $dir is not a folder (use --dir or name files)" >&2; exit 2; }
    while IFS= read -r f; do images+=("$f"); done < <(find "$dir" -maxdepth 1 -type f \
        \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort)
fi
[ ${#images[@]} -gt 0 ] || { echo "no images found" >&2; exit 2; }

mkdir -p "$out"
# shellcheck source=bench/lib/peers.sh
. "$repo/bench/lib/peers.sh"
bench_workdir

# pixgram builds to measure: label -> binary, and what each is.
declare -A bins
labels=()
measured=""
if [ ${#revs[@]} -gt 0 ]; then
    for rev in "${revs[@]}"; do
        commit="$(git -C "$repo" rev-parse --short "$rev^{commit}")"
        src="$repo/target/bench-src/$commit"
        if [ ! -f "$src/Cargo.toml" ]; then
            mkdir -p "$src"
            git -C "$repo" archive "$commit" | tar -x -C "$src"
        fi
        echo "== build (release) of $rev = $commit" >&2
        (cd "$src" && CARGO_TARGET_DIR="$repo/target/bench-rev/$commit" cargo build --release -q -p pixgram-cli)
        label=pixgram
        [ ${#revs[@]} -gt 1 ] && label="pixgram@$commit"
        labels+=("$label")
        bins[$label]="$repo/target/bench-rev/$commit/release/pixgram"
        measured="$measured${measured:+, }commit $commit"
    done
else
    echo "== build (release) of the working tree" >&2
    (cd "$repo" && cargo build --release -q -p pixgram-cli)
    labels=(pixgram)
    bins[pixgram]="${CARGO_TARGET_DIR:-$repo/target}/release/pixgram"
    measured="working tree on $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
    git -C "$repo" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null ||
        measured="$measured with uncommitted changes"
fi

have_zmq=0
if [ "$peers" = 1 ]; then
    if [ "$install" = 1 ]; then
        echo "== installing the Python peers (pip install imagezmq pyzmq numpy)" >&2
        python3 -m pip install -q imagezmq pyzmq numpy
    fi
    if python3 -c "import zmq, imagezmq" 2>/dev/null; then
        have_zmq=1
    else
        echo "note: ImageZMQ peer skipped: python3 cannot import zmq and imagezmq" \
            "(run with --install-peers, or: python3 -m pip install imagezmq pyzmq numpy)" >&2
    fi
fi

# Starts a server in the background, its stderr in $work/server.err; waits until it prints
# "listening on ADDR" and sets $server_pid and $server_addr. Fails after 5 s.
start_server() {
    : >"$work/server.err"
    timeout -k 1 "$timeout_s" "$@" >/dev/null 2>"$work/server.err" &
    server_pid=$!
    started+=("$server_pid")
    server_addr=""
    for _ in $(seq 100); do
        server_addr="$(sed -n 's/.*listening on \([^ ;]*:[0-9][0-9]*\).*/\1/p' "$work/server.err" | head -1)"
        [ -n "$server_addr" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "server did not start: $*" >&2
    cat "$work/server.err" >&2
    return 1
}

# Waits up to $1 tenths of a second for the server to finish, then kills it.
stop_server() {
    for _ in $(seq "$1"); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# Runs a client; prints "frames secs fps MBps status" parsed from its summary line on stderr.
run_client() {
    local rc=0
    timeout -k 1 "$timeout_s" "$@" >/dev/null 2>"$work/client.err" || rc=$?
    python3 - "$work/client.err" "$rc" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
rc = int(sys.argv[2])
m = re.search(r"sent (\d+) frames, ([\d.]+) MB in ([\d.]+) s: ([\d.]+) frames/s, ([\d.]+) MB/s", text)
status = "ok" if rc == 0 else ("timeout" if rc in (124, 137) else f"exit{rc}")
if m:
    frames, mb, secs, fps, mbps = m.groups()
    print(frames, secs, fps, mbps, status)
else:
    print(0, 0, "nan", "nan", status if status != "ok" else "noparse")
EOF
}

# One pixgram run of `frames` frames; prints "frames secs fps MBps status".
pixgram_run() {
    local bin="$1" img="$2" window="$3" dsize="$4" frames="$5"
    start_server "$bin" recv --listen 127.0.0.1:0 --count "$frames" --quiet || {
        echo "0 0 nan nan nostart"; return; }
    run_client "$bin" send --to "$server_addr" --loop "$frames" --window "$window" \
        --datagram-size "$dsize" "$img"
    stop_server 30 # it exits by itself after --count frames
}

# One peer run of about $seconds; prints "frames secs fps MBps status".
peer_run() {
    local script="$1" img="$2" listen="$3"
    shift 3
    start_server python3 "$repo/bench/peers/$script" server --listen "$listen" "$@" || {
        echo "0 0 nan nan nostart"; return; }
    run_client python3 "$repo/bench/peers/$script" client --to "$server_addr" --loop 100000000 \
        --max-seconds "$seconds" "$img"
    stop_server 0 # the client has its last reply: the server has nothing left to do
}

configs=()
for label in "${labels[@]}"; do
    configs+=("$label w1 d1200" "$label w8 d1200" "$label w1 d65507" "$label w8 d65507")
done
if [ "$peers" = 1 ]; then
    configs+=("seed bytes" "seed bytearray")
    [ "$have_zmq" = 1 ] && configs+=("imagezmq reqrep")
fi

# Frames per pixgram run, so that a run lasts about $seconds: a short run (which also warms the
# page cache), then frames/s x seconds, again until a calibration run lasted at least half of
# $seconds (the sender's rate ramps up at start, so short runs understate the rate); 4 rounds at
# most. The count comes from the fastest round, so noise makes runs longer, never too short.
declare -A frames_for
echo "== calibrating frame counts" >&2
for img in "${images[@]}"; do
    size=$(stat -c %s "$img")
    for cfg in "${configs[@]}"; do
        set -- $cfg
        case "$1" in pixgram*) ;; *) continue ;; esac
        w=${2#w} d=${3#d}
        n=$(( 20000000 / size )); [ "$n" -lt 5 ] && n=5; [ "$n" -gt 2000 ] && n=2000
        best=0
        for round in 1 2 3 4; do
            read -r _ _ fps _ _ < <(pixgram_run "${bins[$1]}" "$img" "$w" "$d" "$n")
            read -r done n best < <(python3 - "$fps" "$n" "$seconds" "$round" "$best" <<'EOF'
import math, sys
fps, n, target, rnd, best = map(float, sys.argv[1:])
n = int(n)
if math.isnan(fps) or fps <= 0:
    print(1, max(n, 10), best)
else:
    best = max(best, fps)  # the fastest round: the ramp-up and noise only slow a run down
    want = max(10, min(200000, round(best * target)))
    done = n / fps >= target / 2 or rnd == 4
    print(int(done), want if done else min(want, n * 20), best)
EOF
)
            [ "$done" = 1 ] && break
        done
        frames_for["$img|$cfg"]=$n
    done
done

tsv="$out/results.tsv"
printf 'tool\tconfig\timage\tbytes\trep\tframes\tsecs\tfps\tMBps\tstatus\n' >"$tsv"
total=$(( reps * ${#images[@]} * ${#configs[@]} ))
i=0
echo "== measuring: $reps reps x ${#images[@]} images x ${#configs[@]} configurations" >&2
for rep in $(seq "$reps"); do
    for img in "${images[@]}"; do
        size=$(stat -c %s "$img")
        name=$(basename "$img")
        for cfg in "${configs[@]}"; do
            set -- $cfg
            i=$((i + 1))
            case "$1" in
            pixgram*) res=$(pixgram_run "${bins[$1]}" "$img" "${2#w}" "${3#d}" "${frames_for["$img|$cfg"]}") ;;
            seed) res=$(peer_run seed_stopwait.py "$img" 127.0.0.1:0 --accumulate "$2") ;;
            imagezmq) res=$(peer_run imagezmq_reqrep.py "$img" '127.0.0.1:*') ;;
            esac
            read -r frames secs fps mbps status <<<"$res"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "${*:2}" "$name" "$size" \
                "$rep" "$frames" "$secs" "$fps" "$mbps" "$status" >>"$tsv"
            printf '[%3d/%d] rep %d %-26s %-18s %8s frames/s %8s MB/s %s\n' "$i" "$total" "$rep" \
                "$name" "$cfg" "$fps" "$mbps" "$status" >&2
        done
    done
done

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
    echo "measured: pixgram $measured; $(date -u +%Y-%m-%dT%H:%MZ); $reps reps, about $seconds s per run"
    echo
    python3 "$repo/bench/table.py" "$tsv"
} | tee "$out/table.md"
echo "raw results: $tsv; table: $out/table.md" >&2
