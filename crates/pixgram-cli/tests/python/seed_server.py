#!/usr/bin/env python3
"""A server in the original scripts' format, for testing `pixgram send|msg --compat seed`.

Standard library only. On the image port it reads an 8-byte length (struct.unpack('l')), then
collects datagrams until it has that many bytes, saves the image and replies b"get message!!!"
to the sender; on the message port it parses each datagram as JSON and replies b"get the msg".
Unlike the original it asks for a 4 MiB receive buffer, gives up an image when a new 8-byte
header arrives before it is complete, and exits after --count items or --idle seconds of
silence, so a test can never hang on it.

Test knob: --drop-chunk I:C ignores chunk C of image I (0-based) as if the network had lost it;
that image is never answered.

Prints one JSON line per image, broken image and message.
"""

import argparse
import json
import os
import select
import socket
import struct
import sys

IMAGE_REPLY = b"get message!!!"
MESSAGE_REPLY = b"get the msg"


def bind(text):
    host, _, port = text.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((host, int(port)))
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True)
    p.add_argument("--msg-listen")
    p.add_argument("--save", required=True)
    p.add_argument("--count", type=int, default=None, help="exit after this many images+messages")
    p.add_argument("--idle", type=float, default=5.0, help="exit after this much silence")
    p.add_argument("--drop-chunk")
    args = p.parse_args()
    drop = tuple(int(x) for x in args.drop_chunk.split(":")) if args.drop_chunk else None

    img = bind(args.listen)
    socks = [img]
    msg = None
    if args.msg_listen:
        msg = bind(args.msg_listen)
        socks.append(msg)
    ports = {"image": img.getsockname()[1], "message": msg.getsockname()[1] if msg else None}
    print(json.dumps({"listening": ports}), flush=True)

    done = 0
    started = 0  # images whose header arrived
    length = None  # bytes expected of the image being collected
    data = bytearray()
    chunk = 0
    while args.count is None or done < args.count:
        ready, _, _ = select.select(socks, [], [], args.idle)
        if not ready:
            break
        for s in ready:
            dgram, peer = s.recvfrom(65536)
            if s is msg:
                try:
                    value = json.loads(dgram.decode("utf-8"))
                except ValueError:
                    continue
                s.sendto(MESSAGE_REPLY, peer)
                done += 1
                print(json.dumps({"message": value}), flush=True)
                continue
            if len(dgram) == 8 and (length is None or length - len(data) != 8):
                if length is not None:
                    print(json.dumps({"broken": started - 1, "received": len(data)}), flush=True)
                (length,) = struct.unpack("l", dgram)
                data, chunk = bytearray(), 0
                started += 1
                continue
            if length is None:
                continue
            if drop != (started - 1, chunk):
                data += dgram
            chunk += 1
            if len(data) >= length:
                path = os.path.join(args.save, "image_%04d.jpg" % (started - 1))
                with open(path + ".tmp", "wb") as f:
                    f.write(data)
                os.rename(path + ".tmp", path)
                s.sendto(IMAGE_REPLY, peer)
                done += 1
                print(json.dumps({"image": started - 1, "bytes": len(data), "saved": path}), flush=True)
                length = None


if __name__ == "__main__":
    sys.exit(main())
