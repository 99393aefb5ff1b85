#!/usr/bin/env python3
"""The original Python scripts' image protocol, as a benchmark peer for bench/loopback.sh.

Protocol (UDP): for each image the client sends one datagram holding the length as an 8-byte
little-endian integer, then the image in 1024-byte datagrams; the server collects chunks until it
has that many bytes and replies b"get message!!!"; the client waits for the reply before the next
image (stop-and-wait). There is no checksum, sequence number or retransmission: a lost chunk
makes the server wait forever, so the client gives up after --reply-timeout and says so.

The server asks for a 4 MiB receive buffer (--rcvbuf; the original used the 208 KiB default and
hangs on frames over about 100 KB). It accumulates chunks either as the scripts did, `data +=
chunk` on bytes (--accumulate bytes: quadratic in the frame size, because every += copies the
whole frame so far), or in a bytearray (--accumulate bytearray: linear, the fair version).

Python standard library only. Both sides print one line on stderr in pixgram's format:
    sent N frames, X MB in T s: F frames/s, M MB/s; ...
"""

import argparse
import socket
import struct
import sys
import time

HEADER = struct.Struct("<Q")
CHUNK = 1024
REPLY = b"get message!!!"


def addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def rate_line(verb, frames, nbytes, secs):
    secs = max(secs, 1e-9)
    return (
        f"{verb} {frames} frames, {nbytes / 1e6:.2f} MB in {secs:.2f} s: "
        f"{frames / secs:.1f} frames/s, {nbytes / 1e6 / secs:.1f} MB/s"
    )


def server(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.bind(addr(args.listen))
    host, port = sock.getsockname()
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    print(f"listening on {host}:{port} (receive buffer {granted} bytes)", file=sys.stderr, flush=True)
    frames = nbytes = 0
    start = None
    while args.count is None or frames < args.count:
        head, peer = sock.recvfrom(65536)
        if start is None:
            start = time.perf_counter()
        if len(head) != HEADER.size:
            continue  # not a length header: skip until one comes (the original would misparse)
        (length,) = HEADER.unpack(head)
        if args.accumulate == "bytes":
            data = b""
            while len(data) < length:
                chunk, _ = sock.recvfrom(CHUNK)
                data += chunk
        else:
            data = bytearray()
            while len(data) < length:
                chunk, _ = sock.recvfrom(CHUNK)
                data += chunk
        sock.sendto(REPLY, peer)
        frames += 1
        nbytes += len(data)
    elapsed = time.perf_counter() - start if start else 0.0
    print(rate_line("received", frames, nbytes, elapsed), file=sys.stderr, flush=True)


def client(args):
    images = []
    for path in args.files:
        with open(path, "rb") as f:
            images.append(f.read())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(args.reply_timeout)
    to = addr(args.to)
    frames = nbytes = 0
    status = "ok"
    start = time.perf_counter()
    last = start
    deadline = start + args.max_seconds
    try:
        for _ in range(args.loop):
            for img in images:
                view = memoryview(img)
                sock.sendto(HEADER.pack(len(img)), to)
                for off in range(0, len(img), CHUNK):
                    sock.sendto(view[off : off + CHUNK], to)
                reply, _ = sock.recvfrom(1024)
                if reply != REPLY:
                    raise RuntimeError(f"unexpected reply {reply!r}")
                frames += 1
                nbytes += len(img)
                last = time.perf_counter()
                if last > deadline:
                    raise StopIteration
    except StopIteration:
        status = "stopped at --max-seconds"
    except socket.timeout:
        status = f"HUNG: no reply within {args.reply_timeout} s (a datagram was lost)"
    print(
        f"{rate_line('sent', frames, nbytes, last - start)}; {status}",
        file=sys.stderr,
        flush=True,
    )
    return 1 if status.startswith("HUNG") else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server", help="receive images, reply after each")
    s.add_argument("--listen", required=True, help="HOST:PORT (port 0: any free port)")
    s.add_argument("--rcvbuf", type=int, default=4 << 20, help="SO_RCVBUF to ask for")
    s.add_argument("--count", type=int, help="exit after this many images")
    s.add_argument("--accumulate", choices=["bytes", "bytearray"], default="bytes")
    c = sub.add_parser("client", help="send images, wait for each reply")
    c.add_argument("--to", required=True, help="HOST:PORT")
    c.add_argument("--loop", type=int, default=1, help="send the list this many times")
    c.add_argument("--max-seconds", type=float, default=1e9, help="stop after this long")
    c.add_argument("--reply-timeout", type=float, default=2.0)
    c.add_argument("files", nargs="+")
    args = p.parse_args()
    sys.exit(server(args) if args.cmd == "server" else client(args))


if __name__ == "__main__":
    main()
