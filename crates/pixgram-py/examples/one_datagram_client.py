"""The blog's first client on pixgram: one small image, and its acknowledgement.

    python one_datagram_client.py [SERVER_ADDR] [IMAGE]   (no image: a 32x24 one is made)
"""

import sys

import numpy as np

import pixgram

server = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:5000"
image = sys.argv[2] if len(sys.argv) > 2 else np.full((24, 32, 3), (255, 128, 0), np.uint8)
tx = pixgram.Sender(server)
tx.send(image, {"file": "small.jpg"})
sent = tx.close()  # waits for the acknowledgement: the original's "get message!!!"
print(f"acknowledged {sent.acked}, lost {len(sent.lost)}")
sys.exit(0 if sent.acked == 1 else 1)
