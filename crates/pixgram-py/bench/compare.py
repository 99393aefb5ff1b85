"""pixgram's ImageZMQ drop-in against real ImageZMQ, Python to Python on loopback.

    python compare.py --jpeg PHOTO.jpg [--rounds 5] [--frames 2000] [--seconds 2] [--cases A,B]

Cases, interleaved within each round (a hub process and a sender process each):
  reqrep-jpg    send_jpg of the JPEG, REQ/REP: round trips per second at the sender
  pubsub-jpg    send_jpg of the JPEG, PUB/SUB: MB/s reaching the hub's application
  reqrep-array  send_image of the JPEG decoded (an HxWx3 uint8 array), REQ/REP: frames/s
  pubsub-native pixgram only, its native API (live Sender, Receiver handing over every frame
                rather than the drop-in's newest one), against ImageZMQ's pubsub-jpg
Prints one JSON line per run, then the medians and pixgram/ImageZMQ ratios.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(lib):
    if lib == "pixgram":
        from pixgram import imagezmq
        return imagezmq, "udp"
    import imagezmq
    return imagezmq, "tcp"


def payload(case, jpeg_path):
    data = open(jpeg_path, "rb").read()
    if case == "reqrep-array":
        import pixgram
        return pixgram.decode_image(data)
    return data


class NativeHub:
    """pixgram's native Receiver: every frame in order (no latest-frame-wins skipping)."""

    def __init__(self, port):
        import pixgram
        self.rx = pixgram.Receiver(("127.0.0.1", port))

    def recv_jpg(self):
        frame = self.rx.recv()
        return None, frame


class NativeSender:
    def __init__(self, port):
        import pixgram
        self.tx = pixgram.Sender(("127.0.0.1", port), mode="live", deadline=1.0, window=16)

    def send_jpg(self, msg, data):
        self.tx.send_bytes(data, {"msg": msg})


def hub(lib, case, port, seconds):
    if case == "pubsub-native":
        native = NativeHub(port)
        print("ready", flush=True)
        return measure_pubsub(native.recv_jpg, seconds)
    izmq, scheme = load(lib)
    reqrep = case.startswith("reqrep")
    if reqrep or lib == "pixgram":
        h = izmq.ImageHub(f"{scheme}://127.0.0.1:{port}", REQ_REP=reqrep)
    else:  # ImageZMQ's subscriber connects to the publishing sender
        h = izmq.ImageHub(f"tcp://127.0.0.1:{port}", REQ_REP=False)
    print("ready", flush=True)
    recv = h.recv_image if case == "reqrep-array" else h.recv_jpg
    if reqrep:
        while True:
            msg, _ = recv()
            h.send_reply(b"OK")
            if msg == "stop":
                h.close()  # delivers that last reply before the process ends
                return
    measure_pubsub(recv, seconds)


def measure_pubsub(recv, seconds):
    """PUB/SUB: bytes reaching this application from its first frame for `seconds`."""
    _, first = recv()
    start = time.perf_counter()
    frames = nbytes = 0
    while time.perf_counter() - start < seconds:
        _, jpg = recv()
        frames += 1
        nbytes += len(jpg)
    elapsed = time.perf_counter() - start
    print(json.dumps({"frames": frames, "seconds": elapsed, "MB/s": nbytes / elapsed / 1e6,
                      "frames/s": frames / elapsed}), flush=True)
    os._exit(0)  # the sender may still be sending; nothing to close cleanly for


def sender(lib, case, port, frames, seconds, jpeg_path):
    izmq, scheme = load(lib)
    data = payload(case, jpeg_path)
    reqrep = case.startswith("reqrep")
    if case == "pubsub-native":
        s = NativeSender(port)
    elif reqrep or lib == "pixgram":
        s = izmq.ImageSender(f"{scheme}://127.0.0.1:{port}", REQ_REP=reqrep)
    else:  # ImageZMQ's publisher binds
        s = izmq.ImageSender(f"tcp://*:{port}", REQ_REP=False)
        time.sleep(0.5)  # the subscriber connects (ZeroMQ's slow joiner)
    send = s.send_image if case == "reqrep-array" else s.send_jpg
    if reqrep:
        for _ in range(min(50, frames)):  # warm up: connection, path MTU, rates
            send("warm", data)
        start = time.perf_counter()
        for _ in range(frames):
            send("frame", data)
        elapsed = time.perf_counter() - start
        send("stop", data)
        print(json.dumps({"frames": frames, "seconds": elapsed, "frames/s": frames / elapsed,
                          "MB/s": frames * len(memoryview(data).cast("B")) / elapsed / 1e6}),
              flush=True)
        return
    end = time.perf_counter() + seconds + 3  # outlasts the hub's measurement
    while time.perf_counter() < end:
        send("frame", data)
    os._exit(0)


def run_case(lib, case, args):
    port = free_port()
    me = [sys.executable, HERE]
    h = subprocess.Popen(me + ["hub", lib, case, str(port), str(args.seconds)],
                         stdout=subprocess.PIPE, text=True)
    assert h.stdout.readline().strip() == "ready"
    s = subprocess.Popen(me + ["sender", lib, case, str(port), str(args.frames),
                               str(args.seconds), args.jpeg], stdout=subprocess.PIPE, text=True)
    try:
        if case.startswith("reqrep"):
            out, _ = s.communicate(timeout=120)
            h.wait(30)
        else:
            out, _ = h.communicate(timeout=300)
            s.kill()
    finally:
        h.kill()
        s.kill()
    return json.loads(out.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "hub":
        return hub(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    if len(sys.argv) > 1 and sys.argv[1] == "sender":
        return sender(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                      float(sys.argv[6]), sys.argv[7])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jpeg", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=2000, help="REQ/REP round trips per run")
    p.add_argument("--array-frames", type=int, default=300, help="send_image runs")
    p.add_argument("--seconds", type=float, default=2.0, help="PUB/SUB measuring time")
    p.add_argument("--cases", help="comma-separated cases to run (default: all)")
    args = p.parse_args()
    cases = {"reqrep-jpg": "frames/s", "pubsub-jpg": "MB/s", "reqrep-array": "frames/s",
             "pubsub-native": "MB/s"}
    if args.cases:
        wanted = args.cases.split(",")
        unknown = sorted(set(wanted) - set(cases))
        if unknown:
            p.error(f"unknown case {', '.join(unknown)}; the cases are {', '.join(cases)}")
        cases = {c: u for c, u in cases.items() if c in wanted}
    results = {(lib, c): [] for lib in ("pixgram", "imagezmq") for c in cases}
    for r in range(args.rounds):
        for case in cases:
            # Alternate which goes first, so a drift in the machine's load favours neither.
            order = ("pixgram", "imagezmq") if r % 2 == 0 else ("imagezmq", "pixgram")
            for lib in order:
                if case == "pubsub-native" and lib == "imagezmq":
                    continue  # compared with ImageZMQ's pubsub-jpg of the same round
                a = argparse.Namespace(**vars(args))
                if case == "reqrep-array":
                    a.frames = args.array_frames
                got = run_case(lib, case, a)
                results[(lib, case)].append(got[cases[case]])
                print(json.dumps({"round": r + 1, "lib": lib, "case": case, **got}), flush=True)
    print(f"\nmedians of {args.rounds} interleaved rounds, {os.path.basename(args.jpeg)} "
          f"({os.path.getsize(args.jpeg):,} bytes)")
    print(f"{'case':<14} {'pixgram':>14} {'ImageZMQ':>14} {'ratio':>7}")
    for case, unit in cases.items():
        px = statistics.median(results[("pixgram", case)])
        peer = "pubsub-jpg" if case == "pubsub-native" else case
        if not results[("imagezmq", peer)]:
            print(f"{case:<14} {px:>9,.0f} {unit:<5}{'(' + peer + ' not run)':>22}")
            continue
        zq = statistics.median(results[("imagezmq", peer)])
        print(f"{case:<14} {px:>9,.0f} {unit:<5}{zq:>9,.0f} {unit:<5}{px / zq:>6.2f}x")


if __name__ == "__main__":
    main()
