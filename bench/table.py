#!/usr/bin/env python3
"""Markdown tables of medians and ratios from bench/loopback.sh's results.tsv.

Usage: python3 bench/table.py target/bench-loopback/results.tsv
"""

import csv
import math
import statistics
import sys
from collections import defaultdict

PIXGRAM = ["w1 d1200", "w8 d1200", "w1 d65507", "w8 d65507"]
PEERS = [("seed", "bytes"), ("seed", "bytearray"), ("imagezmq", "reqrep")]
PEER_LABEL = {
    ("seed", "bytes"): "seed protocol, `data +=` bytes",
    ("seed", "bytearray"): "seed protocol, bytearray",
    ("imagezmq", "reqrep"): "ImageZMQ REQ/REP",
}


def label(tool, config):
    if (tool, config) in PEER_LABEL:
        return PEER_LABEL[(tool, config)]
    w, d = config.split()
    return f"{tool} W{w[1:]} {d[1:]} B"


def main(path):
    runs = defaultdict(list)  # (tool, config, image) -> [(fps, MBps, ok)]
    sizes = {}
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["tool"], row["config"], row["image"])
            sizes[row["image"]] = int(row["bytes"])
            fps, mbps = float(row["fps"]), float(row["MBps"])
            runs[key].append((fps, mbps, row["status"] == "ok" and not math.isnan(fps)))
    images = sorted(sizes, key=lambda i: (sizes[i], i))
    tools = []  # pixgram builds in the order they first appear
    for t, _, _ in runs:
        if t.startswith("pixgram") and t not in tools:
            tools.append(t)
    present = [
        (t, c) for (t, c) in [(t, c) for t in tools for c in PIXGRAM] + PEERS
        if any((t, c, i) in runs for i in images)
    ]

    def median(tool, config, image, col=0):
        ok = [r[col] for r in runs.get((tool, config, image), []) if r[2]]
        return statistics.median(ok) if ok else math.nan

    def failures(tool, config, image):
        rs = runs.get((tool, config, image), [])
        return sum(1 for r in rs if not r[2]), len(rs)

    def fmt(x, digits=0):
        return "n/a" if math.isnan(x) else f"{x:,.{digits}f}"

    print("Median frames/s (MB/s) over the repetitions; `k/n failed` marks runs that lost frames,")
    print("hung or timed out (left out of the median).\n")
    print("| image | bytes | " + " | ".join(label(*p) for p in present) + " |")
    print("|---|---:|" + "---:|" * len(present))
    for img in images:
        cells = []
        for t, c in present:
            fps, mbps = median(t, c, img), median(t, c, img, 1)
            bad, n = failures(t, c, img)
            cell = f"{fmt(fps)} ({fmt(mbps)})"
            if bad:
                cell += f" {bad}/{n} failed"
            cells.append(cell)
        print(f"| {img} | {sizes[img]:,} | " + " | ".join(cells) + " |")

    peers = [p for p in present if not p[0].startswith("pixgram")]
    mine = [p for p in present if p[0].startswith("pixgram")]
    if len(tools) > 1:
        print(f"\nRatio of each build to {tools[0]}, median frames/s, same configuration.\n")
        others = [t for t in tools[1:]]
        cols = [(t, c) for t in others for c in PIXGRAM]
        print("| image | " + " | ".join(f"{label(t, c)} / {tools[0]}" for t, c in cols) + " |")
        print("|---|" + "---:|" * len(cols))
        for img in images:
            cells = [median(t, c, img) / median(tools[0], c, img) for t, c in cols]
            print(f"| {img} | " + " | ".join(fmt(r, 2) for r in cells) + " |")
    if not peers:
        return
    print("\nRatio pixgram / peer of the median frames/s (above 1: pixgram faster). The peers are")
    print("stop-and-wait, so the W1 columns compare like with like; W8 pipelines 8 frames.\n")
    print("| image | peer | " + " | ".join(label(*p) for p in mine) + " |")
    print("|---|---|" + "---:|" * len(mine))
    for img in images:
        for pt, pc in peers:
            base = median(pt, pc, img)
            ratios = [median(t, c, img) / base if base else math.nan for t, c in mine]
            print(f"| {img} | {label(pt, pc)} | " + " | ".join(fmt(r, 2) for r in ratios) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
