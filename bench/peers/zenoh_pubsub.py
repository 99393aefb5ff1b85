#!/usr/bin/env python3
"""zenoh (eclipse-zenoh 1.x) pub/sub of one frame, as a benchmark peer for bench/compare.sh.

Peer to peer on loopback: the subscriber listens on tcp/HOST:PORT, the publisher connects to
it; multicast scouting off; --shm off (the default here) turns zenoh's same-host shared memory
off so the bytes cross TCP like pixgram's cross UDP. The publisher puts the file's bytes with
congestion control BLOCK (nothing dropped) for --max-seconds; the subscriber copies every
payload out (payload.to_bytes()) and stops after a second without one. It prints (stderr):
    received N frames, X MB in T s: F frames/s, M MB/s

Needs: pip install eclipse-zenoh.
"""

import argparse
import sys
import threading
import time

import zenoh


def config(args, role):
    c = zenoh.Config()
    c.insert_json5("mode", '"peer"')
    c.insert_json5("scouting/multicast/enabled", "false")
    c.insert_json5("transport/shared_memory/enabled", "true" if args.shm else "false")
    c.insert_json5(f"{role}/endpoints", f'["tcp/{args.at}"]')
    return c


def rate_line(verb, frames, nbytes, secs):
    secs = max(secs, 1e-9)
    return (
        f"{verb} {frames} frames, {nbytes / 1e6:.2f} MB in {secs:.2f} s: "
        f"{frames / secs:.1f} frames/s, {nbytes / 1e6 / secs:.1f} MB/s"
    )


def sub(args):
    state = {"frames": 0, "bytes": 0, "first": None, "last": None}
    lock = threading.Lock()

    def on_sample(sample):
        data = sample.payload.to_bytes()  # the copy an application makes to use the frame
        now = time.perf_counter()
        with lock:
            if state["first"] is None:
                state["first"] = now
            else:
                state["frames"] += 1
                state["bytes"] += len(data)
            state["last"] = now

    with zenoh.open(config(args, "listen")) as session:
        session.declare_subscriber("pixgram/bench", on_sample)
        print("subscribed", file=sys.stderr, flush=True)
        deadline = time.perf_counter() + args.max_wait
        while True:
            time.sleep(0.05)
            with lock:
                last = state["last"]
            now = time.perf_counter()
            if last is not None and now - last > args.idle:
                break
            if last is None and now > deadline:
                break
    first, last = state["first"], state["last"]
    print(rate_line("received", state["frames"], state["bytes"], (last - first) if first else 0.0),
          file=sys.stderr, flush=True)


def pub(args):
    with open(args.file, "rb") as f:
        img = f.read()
    with zenoh.open(config(args, "connect")) as session:
        publisher = session.declare_publisher(
            "pixgram/bench", congestion_control=zenoh.CongestionControl.BLOCK)
        time.sleep(args.join)  # let the session and the subscriber's interest arrive
        frames = 0
        start = time.perf_counter()
        while time.perf_counter() - start < args.max_seconds:
            publisher.put(img)
            frames += 1
        secs = time.perf_counter() - start
        print(rate_line("sent", frames, frames * len(img), secs), file=sys.stderr, flush=True)
        time.sleep(0.3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shm", action="store_true", help="keep zenoh's shared memory transport on")
    sp = p.add_subparsers(dest="cmd", required=True)
    s = sp.add_parser("sub")
    s.add_argument("--at", required=True, help="HOST:PORT to listen on")
    s.add_argument("--idle", type=float, default=1.0)
    s.add_argument("--max-wait", type=float, default=20.0)
    c = sp.add_parser("pub")
    c.add_argument("--at", required=True, help="HOST:PORT to connect to")
    c.add_argument("--max-seconds", type=float, default=1.0)
    c.add_argument("--join", type=float, default=0.7)
    c.add_argument("file")
    args = p.parse_args()
    sub(args) if args.cmd == "sub" else pub(args)


if __name__ == "__main__":
    main()
