"""The blog's second client on pixgram: a large image, then a JSON list to the other port.

    python chunked_client.py [IMAGE_ADDR] [JSON_ADDR] [IMAGE]   (no image: 1280x720 made)
"""

import sys

import numpy as np

import pixgram

args = sys.argv[1:] + [None] * 3
images, lists = args[0] or "127.0.0.1:5000", args[1] or "127.0.0.1:5001"
image = args[2] or np.random.default_rng(1).integers(0, 255, (720, 1280, 3), np.uint8)
with pixgram.Sender(images) as tx:
    tx.send(image, {"file": "large.jpg"})  # cut into datagrams, reassembled, acknowledged
    assert tx.wait(10), "the image was not acknowledged"
with pixgram.Sender(lists) as tx:
    tx.send_json([1, 2, 3, "four"])
    assert tx.wait(10), "the list was not acknowledged"
print("both acknowledged")
