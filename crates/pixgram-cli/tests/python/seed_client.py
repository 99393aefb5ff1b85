#!/usr/bin/env python3
"""A client in the original scripts' format, for testing `pixgram recv --compat seed`.

Standard library only. For each image it sends, like the original client, the length packed with
struct.pack('l', n) (8 bytes, little-endian signed 64-bit on 64-bit Linux), then the image in
datagrams of at most 1024 bytes, and waits for b"get message!!!". With --single, images that fit
are sent whole in one datagram instead. JSON messages go to --msg-to, one per datagram, each
answered b"get the msg". Unlike the original it never waits forever: a reply that does not come
within --timeout is reported and the client carries on.

Test knobs: --drop-chunk I:C leaves out chunk C of image I (0-based) as if the network had lost
it; --bogus first sends a negative length, a huge length and a stray datagram.

Prints one JSON line per image and message, then a summary line.
"""

import argparse
import json
import socket
import struct
import sys

CHUNK = 1024
IMAGE_REPLY = b"get message!!!"
MESSAGE_REPLY = b"get the msg"


def addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def wait_for(sock, expected, timeout):
    sock.settimeout(timeout)
    try:
        while True:
            data, _ = sock.recvfrom(1024)
            if data == expected:
                return True
    except socket.timeout:
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--to", required=True, help="image port, HOST:PORT")
    p.add_argument("--msg-to", help="message port, HOST:PORT")
    p.add_argument("--message", action="append", default=[], help="JSON text to send")
    p.add_argument("--single", action="store_true", help="send images that fit in one datagram")
    p.add_argument("--drop-chunk", help="I:C, leave out chunk C of image I")
    p.add_argument("--bogus", action="store_true", help="send bogus lengths and a stray first")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("files", nargs="*")
    args = p.parse_args()
    drop = tuple(int(x) for x in args.drop_chunk.split(":")) if args.drop_chunk else None

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    to = addr(args.to)
    if args.bogus:
        sock.sendto(struct.pack("l", -5), to)
        sock.sendto(struct.pack("l", 1 << 62), to)
        sock.sendto(b"\x00" * 700, to)

    replied = 0
    for i, path in enumerate(args.files):
        with open(path, "rb") as f:
            data = f.read()
        if args.single and len(data) <= 65507:
            sock.sendto(data, to)
        else:
            sock.sendto(struct.pack("l", len(data)), to)
            for c, start in enumerate(range(0, len(data), CHUNK)):
                if drop == (i, c):
                    continue
                sock.sendto(data[start:start + CHUNK], to)
        ok = wait_for(sock, IMAGE_REPLY, args.timeout)
        replied += ok
        print(json.dumps({"image": i, "file": path, "bytes": len(data), "replied": ok}), flush=True)

    msg_replied = 0
    if args.message:
        msock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for text in args.message:
            msock.sendto(text.encode("utf-8"), addr(args.msg_to))
            ok = wait_for(msock, MESSAGE_REPLY, args.timeout)
            msg_replied += ok
            print(json.dumps({"message": text, "replied": ok}), flush=True)

    print(json.dumps({"images_replied": replied, "messages_replied": msg_replied}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
