#!/usr/bin/env python3
"""ImageZMQ in PUB/SUB mode (TCP) as a benchmark peer for bench/compare.sh.

The publisher binds (ImageSender(connect_to=..., REQ_REP=False)) and sends the JPEG bytes with
send_jpg as fast as it goes for --max-seconds; the subscriber connects
(ImageHub(open_port=..., REQ_REP=False)), takes every frame it gets with recv_jpg and stops
after a second without one. PUB/SUB has no acknowledgement and drops what its queues cannot
hold, so the figure that counts is the subscriber's: frames and bytes *received*, from the
first to the last arrival. The subscriber prints (stderr):
    received N frames, X MB in T s: F frames/s, M MB/s

Needs: pip install imagezmq pyzmq numpy.
"""

import argparse
import sys
import time

import imagezmq
import zmq


def rate_line(verb, frames, nbytes, secs):
    secs = max(secs, 1e-9)
    return (
        f"{verb} {frames} frames, {nbytes / 1e6:.2f} MB in {secs:.2f} s: "
        f"{frames / secs:.1f} frames/s, {nbytes / 1e6 / secs:.1f} MB/s"
    )


def sub(args):
    hub = imagezmq.ImageHub(open_port=f"tcp://{args.at}", REQ_REP=False)
    hub.zmq_socket.setsockopt(zmq.RCVTIMEO, int(args.idle * 1000))
    print("subscribed", file=sys.stderr, flush=True)
    frames = nbytes = 0
    first = last = None
    deadline = time.perf_counter() + args.max_wait
    while True:
        try:
            _name, buf = hub.recv_jpg()
        except zmq.Again:
            if frames > 0 or time.perf_counter() > deadline:
                break
            continue
        now = time.perf_counter()
        if first is None:
            first = now
        else:
            # The first arrival starts the clock; it is not counted in the rate.
            frames += 1
            nbytes += len(buf)
        last = now
    print(rate_line("received", frames, nbytes, (last - first) if first else 0.0),
          file=sys.stderr, flush=True)


def pub(args):
    with open(args.file, "rb") as f:
        img = f.read()
    name = args.file.rsplit("/", 1)[-1]
    sender = imagezmq.ImageSender(connect_to=f"tcp://{args.at}", REQ_REP=False)
    time.sleep(args.join)  # PUB/SUB's slow joiner: let the subscriber connect first
    frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.max_seconds:
        sender.send_jpg(name, img)
        frames += 1
    secs = time.perf_counter() - start
    print(rate_line("sent", frames, frames * len(img), secs), file=sys.stderr, flush=True)
    time.sleep(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)
    s = sp.add_parser("sub")
    s.add_argument("--at", required=True, help="HOST:PORT the publisher binds")
    s.add_argument("--idle", type=float, default=1.0, help="stop after this long without a frame")
    s.add_argument("--max-wait", type=float, default=20.0, help="give up without any frame")
    c = sp.add_parser("pub")
    c.add_argument("--at", required=True, help="HOST:PORT to bind")
    c.add_argument("--max-seconds", type=float, default=1.0)
    c.add_argument("--join", type=float, default=0.5)
    c.add_argument("file")
    args = p.parse_args()
    sub(args) if args.cmd == "sub" else pub(args)


if __name__ == "__main__":
    main()
