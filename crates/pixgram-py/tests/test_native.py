"""The native API over loopback: bytes, paths, numpy arrays and JSON, each delivered whole."""

import pathlib
import threading
import time

import numpy as np
import pytest

import pixgram
from conftest import gradient


def receive(rx, n, timeout=10.0):
    return [rx.recv(timeout) for _ in range(n)]


def test_bytes_bytearray_and_memoryview_arrive_whole_with_their_metadata():
    big = bytes(range(256)) * 4000  # 1 MB: many datagrams
    with pixgram.Receiver("127.0.0.1:0") as rx, pixgram.Sender(rx.address) as tx:
        ids = [
            tx.send(big, {"camera": "front", "n": [1, 2]}),
            tx.send(bytearray(b"\xff\xd8\xff\xd9")),
            tx.send(memoryview(b"0123456789")[2:6]),
        ]
        got = receive(rx, 3)
    assert ids == [0, 1, 2]
    assert [bytes(f) for f in got] == [big, b"\xff\xd8\xff\xd9", b"2345"]
    assert got[0].meta == {"camera": "front", "n": [1, 2]}
    assert got[1].meta == {}
    assert [f.id for f in got] == ids
    assert all(isinstance(f, pixgram.Frame) and f.peer[0] == "127.0.0.1" for f in got)


def test_a_path_is_sent_as_the_file_named_in_the_metadata(jpeg_file):
    with pixgram.Receiver("127.0.0.1:0") as rx, pixgram.Sender(rx.address) as tx:
        tx.send(str(jpeg_file))
        tx.send(pathlib.Path(jpeg_file), {"file": "renamed.jpg"})
        a, b = receive(rx, 2)
    assert bytes(a) == bytes(b) == jpeg_file.read_bytes()
    assert a.meta == {"file": "photo.jpg"}
    assert b.meta == {"file": "renamed.jpg"}


def test_a_numpy_bgr_array_is_encoded_to_jpeg_and_decodes_back_close_in_bgr_order():
    image = gradient(240, 320)
    with pixgram.Receiver("127.0.0.1:0") as rx, pixgram.Sender(rx.address, quality=95) as tx:
        tx.send(image)
        tx.send(image[:, ::-1])  # not contiguous: numpy's strides are followed
        frame, flipped = receive(rx, 2)
    assert bytes(frame)[:2] == b"\xff\xd8"
    assert frame.meta == {"width": 320, "height": 240}
    decoded = frame.image()
    assert decoded.shape == (240, 320, 3) and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(int) - image.astype(int))
    assert error.mean() < 3, error.mean()
    # Blue (channel 0) grows left to right: a red/blue swap would show here.
    assert decoded[120, 300, 0] > 200 and decoded[120, 10, 0] < 40
    assert np.abs(flipped.image().astype(int) - image[:, ::-1].astype(int)).mean() < 3


def test_json_messages_arrive_as_messages():
    with pixgram.Receiver("127.0.0.1:0") as rx, pixgram.Sender(rx.address) as tx:
        tx.send_json({"battery": 0.87, "tags": ["a", "é"]})
        tx.send_json([1, 2, 3])
        a, b = receive(rx, 2)
    assert isinstance(a, pixgram.Message)
    assert a.json() == {"battery": 0.87, "tags": ["a", "é"]}
    assert b.json() == [1, 2, 3]
    assert "battery" in a.text


def test_frame_bytes_are_exposed_without_a_copy():
    with pixgram.Receiver("127.0.0.1:0") as rx, pixgram.Sender(rx.address) as tx:
        tx.send(b"x" * 100_000)
        frame = rx.recv(10)
    view = memoryview(frame)
    assert view.readonly and view.nbytes == len(frame) == 100_000
    one = np.frombuffer(frame, np.uint8)
    two = np.frombuffer(frame.data, np.uint8)
    # Both views read the same memory: the receiver's buffer, not a copy each.
    assert one.__array_interface__["data"][0] == two.__array_interface__["data"][0]
    assert not one.flags.writeable
    with pytest.raises(TypeError):
        view[0] = 1


def in_thread(function):
    """Runs `function` on a thread; returns a callable giving its result (or raising)."""
    out = {}

    def run():
        try:
            out["value"] = function()
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join(30)
        assert not thread.is_alive(), "still running after 30 s"
        if "error" in out:
            raise out["error"]
        return out["value"]

    return result


def test_the_receiver_is_iterable_and_close_reports_what_was_delivered():
    # A receiver acknowledges while it receives: the sender (window 2: it waits for
    # acknowledgements) runs on a thread of its own.
    with pixgram.Receiver("127.0.0.1:0") as rx:
        tx = pixgram.Sender(rx.address, window=2)

        def send():
            for i in range(5):
                tx.send(bytes([i]) * 3000)
            all_acked = tx.wait(10)
            return all_acked, tx.close(), tx.close()

        sending = in_thread(send)
        got = []
        for item in rx:
            got.append(bytes(item)[0])
            if len(got) == 5:
                break
        all_acked, sent, second = sending()
    assert got == [0, 1, 2, 3, 4]
    assert all_acked and (sent.acked, sent.lost) == (5, [])
    assert second is None  # closing twice is harmless


def test_close_from_another_thread_ends_a_blocked_receive():
    rx = pixgram.Receiver("127.0.0.1:0")
    waiting = in_thread(lambda: rx.recv())
    time.sleep(0.2)
    rx.close()
    with pytest.raises(pixgram.Error, match="closed"):
        waiting()


def test_live_mode_delivers_frames_and_a_key_file_seals_them(tmp_path):
    key = tmp_path / "key"
    key.write_text(bytes(range(32)).hex() + "\n")
    key.chmod(0o600)
    with pixgram.Receiver("127.0.0.1:0", key_file=key) as rx:
        tx = pixgram.Sender(rx.address, mode="live", fps=100, key_file=key, fec=0.25)
        tx.send(b"live" * 1000)
        assert bytes(rx.recv(10)) == b"live" * 1000
        assert tx.close().acked == 1


def test_decode_and_encode_helpers_match_the_frame_methods(jpeg_bytes):
    array = pixgram.decode_image(jpeg_bytes)
    assert array.shape == (240, 320, 3)
    again = pixgram.decode_image(pixgram.encode_jpeg(array, 95))
    assert np.abs(again.astype(int) - array.astype(int)).mean() < 3
