#!/usr/bin/env bash
# JPEG codec speed on the 1920x1080 corpus photo fallenleaf_1920x1080.jpg, in one run: the
# pure-Rust codecs pixgram uses by default (jpeg-encoder with SIMD, zune-jpeg), the same
# benchmark built with --features turbojpeg (the system's libjpeg-turbo through the turbojpeg
# crate), and libjpeg-turbo's own tjbench on the same pixels (Debian: libjpeg-turbo-progs,
# ffmpeg to make the PPM it compresses).
#
# Usage: bash bench/codecs.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
photo="$repo/../shared/corpus/fallenleaf_1920x1080.jpg"
cd "$repo"
echo "== pure Rust (default build)"
cargo bench -q -p pixgram --bench codec 2>&1 | grep -E "decode|encode|resize|├|╰|│  "
echo "== --features turbojpeg"
cargo bench -q -p pixgram --features turbojpeg --bench codec 2>&1 | grep -E "decode|encode|resize|├|╰|│  "
if command -v tjbench >/dev/null && command -v ffmpeg >/dev/null; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    ffmpeg -loglevel error -y -i "$photo" "$work/photo.ppm"
    echo "== tjbench, quality 85, 4:2:0"
    tjbench "$work/photo.ppm" 85 -subsamp 420 -benchtime 3 -warmup 1 -nowrite | grep -E "Frame rate"
    cp "$photo" "$work/photo.jpg"
    echo "== tjbench, decode the photo"
    tjbench "$work/photo.jpg" -benchtime 3 -warmup 1 -nowrite | grep -E "Frame rate"
else
    echo "tjbench or ffmpeg missing: apt-get install libjpeg-turbo-progs ffmpeg"
fi
