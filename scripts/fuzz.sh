#!/usr/bin/env bash
# A bounded fuzzing run of every target in fuzz/ on stable Rust (cargo-fuzz with -s none: no
# sanitizer, so no nightly needed). Each target starts from the committed seed corpus
# (fuzz/corpus/TARGET, written by `cargo run -p pixgram-core --example fuzz_seeds`; `relay` drives
# pixgram-netem's impairing relay, the one `pixgram impair` runs; the MJPEG one
# is three ffmpeg testsrc2 frames; `rtp_jfif` two tiny JPEGs from ffmpeg and GStreamer,
# `rtp_depacketize` their packets from `pixgram send --rtp`), copied to
# a scratch folder so the run does not grow the repository. A crash fails the script and leaves
# the input under target/fuzz-artifacts/TARGET/; turn it into a regression test in the core.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30 s, every target)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-30}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
cd "$repo/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
echo "== build the fuzz targets"
cargo fuzz build -s none -O
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$repo/target/fuzz-artifacts/$t"
    cp -r "corpus/$t/." "$work/$t/" 2>/dev/null || true
    echo "== fuzz $t for ${secs}s"
    cargo fuzz run -s none -O "$t" "$work/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$repo/target/fuzz-artifacts/$t/" 2>&1 |
        grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==.*ERROR|SUMMARY|Done)" || true
    if ls "$repo/target/fuzz-artifacts/$t"/crash-* >/dev/null 2>&1; then
        echo "fuzz: $t crashed; inputs in target/fuzz-artifacts/$t/" >&2
        exit 1
    fi
done
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no crash"
