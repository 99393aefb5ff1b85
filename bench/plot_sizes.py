#!/usr/bin/env python3
"""Plot bench/sizes.sh's medians: MB/s against frame size, one line per case, as a hand-written SVG.

Reads RESULTS (default target/bench-sizes/results.tsv) and, beside it, meta.tsv (commit, date)
when present. Writes OUT (default docs/sizes.svg). Standard library only.

    python3 bench/plot_sizes.py [--results PATH] [--meta PATH] [--out PATH] [--commit C] [--date D]

Both axes are logarithmic. A case with no successful run at a size has no point there.
"""

import argparse
import csv
import math
import os
import subprocess
from xml.sax.saxutils import escape

CASES = [
    # case, legend, colour, dashed
    ("pix", "pixgram send (default flags)", "#d62728", False),
    ("pix_w1", "pixgram send --window 1", "#ff9896", True),
    ("zmq_rr", "ImageZMQ REQ/REP (TCP)", "#1f77b4", False),
    ("zmq_ps", "ImageZMQ PUB/SUB (TCP), received", "#17becf", False),
    ("zenoh", "zenoh pub/sub (TCP, no shm), received", "#2ca02c", False),
    ("blast", "UDP GSO+GRO limit, 1,200 B segments", "#7f7f7f", True),
]


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def nice_ticks(lo, hi):
    """1-2-5 ticks covering [lo, hi] on a log axis."""
    ticks = []
    e = math.floor(math.log10(lo))
    while True:
        for m in (1, 2, 5):
            v = m * 10**e
            if lo <= v <= hi:
                ticks.append(v)
            if v > hi:
                return ticks
        e += 1


def fmt_mb(v):
    return f"{v / 1000:g} GB/s" if v >= 1000 else f"{v:g} MB/s"


def fmt_bytes(b):
    return f"{b / 1e6:g} MB" if b >= 1e6 else f"{b / 1e3:g} KB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="target/bench-sizes/results.tsv")
    ap.add_argument("--meta", help="default: meta.tsv beside --results")
    ap.add_argument("--out", default="docs/sizes.svg")
    ap.add_argument("--commit", help="default: meta.tsv's commit, else git describe")
    ap.add_argument("--date", help="default: meta.tsv's date")
    args = ap.parse_args()

    rows = read_tsv(args.results)
    meta_path = args.meta or os.path.join(os.path.dirname(args.results), "meta.tsv")
    meta = {}
    if os.path.exists(meta_path):
        for r in read_tsv(meta_path):
            meta.setdefault(r["key"], r["value"])
    commit = args.commit or meta.get("commit")
    if not commit:
        try:
            commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                    text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
    date = args.date or meta.get("date", "date unknown")
    reps = meta.get("reps", "?")

    series = {}
    for r in rows:
        mb = float(r["MB_per_s"])
        if int(r["runs_ok"]) > 0 and mb > 0 and not math.isnan(mb):
            series.setdefault(r["case"], []).append((int(r["bytes"]), mb))
    for pts in series.values():
        pts.sort()
    allx = [x for pts in series.values() for x, _ in pts]
    ally = [y for pts in series.values() for _, y in pts]
    if not allx:
        raise SystemExit(f"{args.results}: no successful runs to plot")

    W, H = 860, 540
    left, right, top, bottom = 100, 300, 58, 64
    pw, ph = W - left - right, H - top - bottom
    xlo, xhi = min(allx) / 1.25, max(allx) * 1.25
    ylo = 10 ** math.floor(math.log10(min(ally) / 1.2))
    yhi = 10 ** math.ceil(math.log10(max(ally) * 1.2))

    def X(b):
        return left + pw * (math.log10(b) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo))

    def Y(v):
        return top + ph * (1 - (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)))

    out = []
    o = out.append
    o(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
      'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">')
    o(f'<rect width="{W}" height="{H}" fill="white"/>')
    title = "pixgram and peers on loopback: MB/s against frame size"
    src = meta.get("pixgram_source_commit", "")
    if src and src != "unknown" and not commit.startswith(src):
        commit = f"{commit} (pixgram built from {src})"
    sub = f"commit {commit}, {date}; medians of {reps} interleaved rounds, 2 shared cores"
    o(f'<text x="{left}" y="24" font-size="16" font-weight="bold">{escape(title)}</text>')
    o(f'<text x="{left}" y="43" fill="#444">{escape(sub)}</text>')
    # grid and ticks
    for v in nice_ticks(ylo, yhi):
        y = Y(v)
        major = abs(math.log10(v) - round(math.log10(v))) < 1e-9
        o(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
          f'stroke="{"#ccc" if major else "#eee"}"/>')
        o(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt_mb(v))}</text>')
    sizes = sorted({(int(r["bytes"]), r["size"]) for r in rows})
    for b, label in sizes:
        x = X(b)
        label = label.replace("K", " KB").replace("M", " MB") if label[-1:] in "KM" else fmt_bytes(b)
        o(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        o(f'<text x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{escape(label)}</text>')
    o(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o(f'<text x="{left + pw / 2}" y="{H - 18}" text-anchor="middle">'
      'frame size (JPEG crops of one photo; log scale)</text>')
    o(f'<text transform="translate(22 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
      'MB/s (log scale; 1 MB = 10^6 bytes)</text>')
    # lines
    ly = top + 10
    for case, label, colour, dashed in CASES:
        pts = series.get(case)
        if not pts:
            continue
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        path = " ".join(f"{'M' if i == 0 else 'L'}{X(b):.1f},{Y(v):.1f}" for i, (b, v) in enumerate(pts))
        o(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for b, v in pts:
            o(f'<circle cx="{X(b):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{colour}">'
              f'<title>{escape(label)}: {v:,.0f} MB/s at {b:,} bytes</title></circle>')
        lx = left + pw + 16
        o(f'<line x1="{lx}" y1="{ly}" x2="{lx + 26}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        o(f'<circle cx="{lx + 13}" cy="{ly}" r="3.5" fill="{colour}"/>')
        o(f'<text x="{lx + 32}" y="{ly + 4}">{escape(label)}</text>')
        ly += 22
    o(f'<text x="{left + pw + 16}" y="{ly + 10}" fill="#666" font-size="11">'
      'pixgram: sender, acknowledged.</text>')
    o(f'<text x="{left + pw + 16}" y="{ly + 26}" fill="#666" font-size="11">'
      'UDP limit sends no frames: flat</text>')
    o(f'<text x="{left + pw + 16}" y="{ly + 40}" fill="#666" font-size="11">'
      'in principle; its spread is noise.</text>')
    o("</svg>")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
