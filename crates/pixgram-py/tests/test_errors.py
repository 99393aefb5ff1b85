"""Rust errors as Python exceptions, and Ctrl-C during a blocking receive."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pixgram
from conftest import free_port


def test_a_receive_with_nothing_arriving_raises_timeout_in_time():
    with pixgram.Receiver("127.0.0.1:0") as rx:
        start = time.monotonic()
        with pytest.raises(pixgram.Timeout):
            rx.recv(timeout=0.3)
        assert 0.3 <= time.monotonic() - start < 3
        assert rx.poll() is None


def test_sending_where_nothing_listens_raises_refused_or_timeout():
    tx = pixgram.Sender(("127.0.0.1", free_port()), timeout=1.0)
    tx.send(b"x" * 10_000)
    with pytest.raises((pixgram.Refused, pixgram.Timeout)) as caught:
        tx.wait(10)
    assert "127.0.0.1" in str(caught.value)
    assert isinstance(caught.value, pixgram.Error)


def test_bad_arguments_say_what_is_wrong(tmp_path):
    with pytest.raises(pixgram.AddressError, match="udp://"):
        pixgram.Sender("udp://127.0.0.1:5000")
    with pytest.raises(pixgram.AddressError):
        pixgram.Sender("no-such-host.invalid:5000")
    with pytest.raises(ValueError, match="reliable"):
        pixgram.Sender("127.0.0.1:5000", mode="fast")
    with pytest.raises(OSError):
        pixgram.Sender("127.0.0.1:5000").send(str(tmp_path / "missing.jpg"))
    open_key = tmp_path / "key"
    open_key.write_text("00" * 32)
    open_key.chmod(0o644)
    with pytest.raises(pixgram.KeyFileError, match="chmod 600"):
        pixgram.Receiver("127.0.0.1:0", key_file=open_key)
    with pixgram.Receiver("127.0.0.1:0") as rx:
        with pytest.raises(pixgram.AddressError):
            pixgram.Receiver(rx.address)  # the port is taken


def test_images_that_are_not_images_raise_image_error():
    with pytest.raises(pixgram.ImageError, match="not a JPEG or PNG"):
        pixgram.decode_image(b"hello")
    tx = pixgram.Sender("127.0.0.1:9")
    with pytest.raises(pixgram.ImageError, match="HxWx3"):
        tx.send(np.zeros((4, 4), np.uint8))
    with pytest.raises(pixgram.ImageError, match="uint8"):
        tx.send(np.zeros((4, 4, 3), np.float32))


def test_a_closed_sender_refuses_to_send():
    tx = pixgram.Sender("127.0.0.1:9")
    tx.close()
    with pytest.raises(pixgram.Error, match="closed"):
        tx.send(b"x")


def test_ctrl_c_interrupts_a_blocking_receive():
    script = textwrap.dedent(
        """
        import pixgram, sys
        rx = pixgram.Receiver("127.0.0.1:0")
        print("ready", flush=True)
        try:
            rx.recv()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # inside recv, the GIL released
        start = time.monotonic()
        os.kill(child.pid, signal.SIGINT)
        out, _ = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode == 3 and "interrupted" in out
    assert time.monotonic() - start < 2


def test_ctrl_c_interrupts_a_send_blocked_on_a_full_window():
    # The receiver is a plain UDP socket that never answers: the first frame fills the
    # window of one, the second send waits for room until Ctrl-C.
    script = textwrap.dedent(
        """
        import pixgram, socket, sys
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        tx = pixgram.Sender(silent.getsockname(), window=1, timeout=60)
        tx.send_bytes(b"x" * 1000)
        print("ready", flush=True)
        try:
            tx.send_bytes(b"y" * 1000)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        print("sent", flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # inside the second send, the GIL released
        start = time.monotonic()
        os.kill(child.pid, signal.SIGINT)
        out, _ = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode == 3 and "interrupted" in out, out
    assert time.monotonic() - start < 2
