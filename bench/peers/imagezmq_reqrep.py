#!/usr/bin/env python3
"""ImageZMQ in REQ/REP mode (TCP) as a benchmark peer for bench/loopback.sh.

The client sends each image with ImageSender.send_jpg (the JPEG bytes as they are, no decode)
and waits for the hub's reply before the next one: stop-and-wait, like pixgram --window 1.
The hub receives with ImageHub.recv_jpg and answers b"OK".

Needs: pip install imagezmq pyzmq numpy. Both sides print one line on stderr in pixgram's format:
    sent N frames, X MB in T s: F frames/s, M MB/s; ...
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


def server(args):
    hub = imagezmq.ImageHub(open_port=f"tcp://{args.listen}")
    endpoint = hub.zmq_socket.getsockopt_string(zmq.LAST_ENDPOINT)
    print(f"listening on {endpoint.removeprefix('tcp://')}", file=sys.stderr, flush=True)
    frames = nbytes = 0
    start = None
    while args.count is None or frames < args.count:
        _name, buf = hub.recv_jpg()
        if start is None:
            start = time.perf_counter()
        hub.send_reply(b"OK")
        frames += 1
        nbytes += len(buf)
    elapsed = time.perf_counter() - start if start else 0.0
    print(rate_line("received", frames, nbytes, elapsed), file=sys.stderr, flush=True)


def client(args):
    images = []
    for path in args.files:
        with open(path, "rb") as f:
            images.append((path.rsplit("/", 1)[-1], f.read()))
    sender = imagezmq.ImageSender(connect_to=f"tcp://{args.to}")
    sender.zmq_socket.setsockopt(zmq.RCVTIMEO, int(args.reply_timeout * 1000))
    frames = nbytes = 0
    status = "ok"
    start = time.perf_counter()
    last = start
    deadline = start + args.max_seconds
    try:
        for _ in range(args.loop):
            for name, img in images:
                sender.send_jpg(name, img)
                frames += 1
                nbytes += len(img)
                last = time.perf_counter()
                if last > deadline:
                    raise StopIteration
    except StopIteration:
        status = "stopped at --max-seconds"
    except zmq.Again:
        status = f"HUNG: no reply within {args.reply_timeout} s"
    print(f"{rate_line('sent', frames, nbytes, last - start)}; {status}", file=sys.stderr, flush=True)
    return 1 if status.startswith("HUNG") else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server", help="receive images, reply after each")
    s.add_argument("--listen", required=True, help="HOST:PORT (HOST:* for any free port)")
    s.add_argument("--count", type=int, help="exit after this many images")
    c = sub.add_parser("client", help="send images, wait for each reply")
    c.add_argument("--to", required=True, help="HOST:PORT")
    c.add_argument("--loop", type=int, default=1, help="send the list this many times")
    c.add_argument("--max-seconds", type=float, default=1e9, help="stop after this long")
    c.add_argument("--reply-timeout", type=float, default=5.0)
    c.add_argument("files", nargs="+")
    args = p.parse_args()
    sys.exit(server(args) if args.cmd == "server" else client(args))


if __name__ == "__main__":
    main()
