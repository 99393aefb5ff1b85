"""The blog's server on pixgram: images on one port (saved), JSON lists on another (printed).

    python image_and_json_server.py [IMAGE_ADDR] [JSON_ADDR] [ITEMS]

The original's reply ("get message!!!") is pixgram's acknowledgement: the sender knows.
"""

import sys
import threading

import pixgram

args = sys.argv[1:] + [None] * 3
images_addr, lists_addr = args[0] or "127.0.0.1:5000", args[1] or "127.0.0.1:5001"
items = int(args[2] or 0)  # exit after this many (0: never)
done = threading.Semaphore(0)
said = threading.Lock()  # one line at a time from the two threads


def say(line):
    with said:
        print(line, flush=True)


def serve(addr):
    for item in pixgram.Receiver(addr):
        if isinstance(item, pixgram.Frame):
            name = item.meta.get("file", f"frame-{item.id}.jpg")
            with open(name, "wb") as f:
                f.write(item)  # the received bytes, without a copy
            say(f"saved {name} {len(item)} bytes")
        else:
            say(f"list {item.json()}")
        done.release()


for addr in (images_addr, lists_addr):
    threading.Thread(target=serve, args=(addr,), daemon=True).start()
for _ in range(items or sys.maxsize):
    done.acquire()
