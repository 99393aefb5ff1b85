"""The ImageZMQ drop-in against itself, in both modes."""

import threading
import time

import numpy as np
import pytest

import pixgram
from conftest import free_port, gradient
from pixgram import imagezmq


def serve(hub, n, replies=True):
    """A hub thread answering `n` frames with b"OK <msg>"; returns what it received."""
    got = []

    def run():
        for _ in range(n):
            msg, image = hub.recv_image()
            got.append((msg, np.array(image)))
            if replies:
                hub.send_reply(b"OK " + str(msg).encode())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def test_req_rep_send_image_returns_the_hubs_reply_and_arrays_arrive_equal():
    port = free_port()
    arrays = [
        gradient(1080, 1920),
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        np.array([[1, -2], [3, -4]], dtype=np.int64),
    ]
    with imagezmq.ImageHub(f"udp://127.0.0.1:{port}", timeout=10) as hub:
        thread, got = serve(hub, len(arrays))
        with imagezmq.ImageSender(f"udp://127.0.0.1:{port}", reply_timeout=10) as sender:
            replies = [sender.send_image(f"cam{i}", a) for i, a in enumerate(arrays)]
        thread.join(10)
    assert replies == [b"OK cam0", b"OK cam1", b"OK cam2"]
    assert [m for m, _ in got] == ["cam0", "cam1", "cam2"]
    for sent, (_, received) in zip(arrays, got):
        assert received.dtype == sent.dtype and received.shape == sent.shape
        assert np.array_equal(received, sent)


def test_req_rep_send_jpg_and_recv_jpg_carry_the_bytes_as_they_are(jpeg_bytes):
    port = free_port()
    with imagezmq.ImageHub(f"udp://*:{port}", timeout=10) as hub:
        received = []

        def run():
            for _ in range(2):
                msg, jpg = hub.recv_jpg()
                received.append((msg, bytes(jpg)))
                hub.send_reply()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        sender = imagezmq.ImageSender(f"udp://127.0.0.1:{port}", reply_timeout=10)
        assert sender.send_jpg("rpi1", jpeg_bytes) == b"OK"
        assert sender.send_jpg("rpi1", np.frombuffer(jpeg_bytes, np.uint8)) == b"OK"
        sender.close()
        thread.join(10)
    assert received == [("rpi1", jpeg_bytes), ("rpi1", jpeg_bytes)]
    # recv_image of a JPEG decodes it, as cv2.imdecode would.
    assert pixgram.decode_image(jpeg_bytes).shape == (240, 320, 3)


def test_two_senders_each_get_their_own_reply():
    port = free_port()
    with imagezmq.ImageHub(f"udp://127.0.0.1:{port}", timeout=10) as hub:
        thread, _ = serve(hub, 6)
        senders = [imagezmq.ImageSender(f"udp://127.0.0.1:{port}", reply_timeout=10) for _ in range(2)]
        out = {0: [], 1: []}

        def run(i):
            for k in range(3):
                out[i].append(senders[i].send_image(f"s{i}-{k}", np.full((8, 8, 3), i, np.uint8)))

        workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(20)
        thread.join(10)
        for s in senders:
            s.close()
    assert out == {i: [f"OK s{i}-{k}".encode() for k in range(3)] for i in range(2)}


def test_reply_sessions_past_the_limit_are_closed_counted_and_replies_still_arrive(monkeypatch):
    monkeypatch.setattr(imagezmq, "MAX_REPLY_SESSIONS", 1)
    port = free_port()
    with imagezmq.ImageHub(f"udp://127.0.0.1:{port}", timeout=10) as hub:
        thread, _ = serve(hub, 4)
        a, b = (imagezmq.ImageSender(f"udp://127.0.0.1:{port}", reply_timeout=10) for _ in "ab")
        # Alternating senders: each reply needs the session the previous one evicted.
        pairs = ((a, "a"), (b, "b"), (a, "a"), (b, "b"))
        replies = [s.send_image(m, np.zeros((2, 2, 3), np.uint8)) for s, m in pairs]
        thread.join(10)
        assert replies == [b"OK a", b"OK b", b"OK a", b"OK b"]
        assert hub.reply_sessions_closed == 3 and len(hub._reply_senders) == 1
        a.close()
        b.close()


def pub_sub_while_the_hub_is_busy(latest_only):
    """Frame 0, then frames 1-19 sent while the hub is busy; what the hub returns after."""
    port = free_port()
    hub = imagezmq.ImageHub(f"udp://127.0.0.1:{port}", REQ_REP=False, timeout=10,
                            latest_only=latest_only)
    sender = imagezmq.ImageSender(f"udp://127.0.0.1:{port}", REQ_REP=False, window=32)
    first = threading.Event()
    seen = []

    def run():
        seen.append(hub.recv_image()[0])
        first.set()
        time.sleep(0.3)  # busy: the other frames arrive meanwhile
        while not seen or seen[-1] != 19:
            seen.append(hub.recv_image()[0])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert sender.send_image(0, np.zeros((64, 64, 3), np.uint8)) is None
    assert first.wait(10)
    for i in range(1, 20):
        assert sender.send_image(i, np.full((64, 64, 3), i, np.uint8)) is None
    thread.join(10)
    sender.close()
    return hub, seen


def test_pub_sub_delivers_frames_in_order_without_replies():
    hub, seen = pub_sub_while_the_hub_is_busy(latest_only=False)
    with hub:
        assert seen == list(range(20))
        with pytest.raises(pixgram.Error, match="REQ_REP"):
            hub.send_reply(b"OK")
        hub.timeout = 0.2
        with pytest.raises(pixgram.Timeout):
            hub.recv_image()


def test_pub_sub_latest_only_skips_the_frames_overtaken_while_the_hub_was_busy():
    hub, seen = pub_sub_while_the_hub_is_busy(latest_only=True)
    with hub:
        assert seen == [0, 19]
        assert hub.frames_skipped == 18


def test_urls_that_pixgram_cannot_use_say_what_to_write():
    with pytest.raises(pixgram.AddressError, match="udp://127.0.0.1:5555"):
        imagezmq.ImageSender("tcp://127.0.0.1:5555")
    with pytest.raises(pixgram.AddressError, match="udp://"):
        imagezmq.ImageHub("tcp://*:5555")
    with pytest.raises(pixgram.AddressError, match="hub"):
        imagezmq.ImageSender("udp://*:5555")
    with pytest.raises(pixgram.AddressError):
        imagezmq.ImageSender("127.0.0.1:5555")


def test_req_rep_send_to_a_hub_that_never_got_the_frame_raises_without_a_reply_timeout(monkeypatch):
    # The sender waits for the reply, not for the acknowledgement first: its session's errors
    # (here nothing listens: refused, or the peer gone after the 1 s timeout) must still end
    # the wait, with no reply_timeout set.
    real = pixgram._native.Sender
    monkeypatch.setattr(imagezmq._native, "Sender", lambda *a, **k: real(*a, timeout=1.0, **k))
    sender = imagezmq.ImageSender(f"udp://127.0.0.1:{free_port()}")
    caught = []

    def run():
        try:
            sender.send_jpg("cam", b"\xff\xd8" + b"x" * 10_000)
        except pixgram.Error as e:
            caught.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "send_jpg still waiting for a reply from nowhere"
    assert caught and isinstance(caught[0], (pixgram.Refused, pixgram.Timeout))
