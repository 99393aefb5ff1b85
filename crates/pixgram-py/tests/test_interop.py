"""The Python package and the `pixgram` binary understand each other, both directions."""

import json
import subprocess

import numpy as np

import pixgram
from conftest import free_port, gradient, pixgram_binary
from pixgram import imagezmq


def start_recv(binary, port, folder, count):
    return subprocess.Popen(
        [binary, "recv", "--listen", f"127.0.0.1:{port}", "--save", str(folder),
         "--count", str(count), "--duration", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def saved(folder):
    """name-without-session-prefix -> bytes, for every file `pixgram recv --save` wrote."""
    return {p.name.split("-", 3)[3]: p.read_bytes() for p in folder.iterdir()}


def test_pixgram_recv_receives_what_the_python_sender_sent(tmp_path, jpeg_file):
    binary = pixgram_binary()
    port, folder = free_port(), tmp_path / "in"
    recv = start_recv(binary, port, folder, 4)
    try:
        with pixgram.Sender(("127.0.0.1", port)) as tx:
            tx.send(jpeg_file)
            tx.send(b"\x89PNG\r\n\x1a\n" + b"x" * 5000, {"file": "raw.png"})
            tx.send(gradient(120, 160), {"file": "array.jpg"})
            tx.send_json({"hello": "binary"})
        out, err = recv.communicate(timeout=30)
    finally:
        recv.kill()
    assert recv.returncode == 0, err
    files = saved(folder)
    assert files["photo.jpg"] == jpeg_file.read_bytes()
    assert files["raw.png"] == b"\x89PNG\r\n\x1a\n" + b"x" * 5000
    assert pixgram.decode_image(files["array.jpg"]).shape == (120, 160, 3)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines if line.get("event") == "message"]
    assert messages == [{"hello": "binary"}], out


def test_pixgram_recv_receives_the_drop_in_sender_publishing(tmp_path, jpeg_bytes):
    binary = pixgram_binary()
    port, folder = free_port(), tmp_path / "in"
    recv = start_recv(binary, port, folder, 3)
    try:
        sender = imagezmq.ImageSender(f"udp://127.0.0.1:{port}", REQ_REP=False)
        for i in range(3):
            sender.send_jpg(f"cam-{i}", jpeg_bytes)
        sender.close()
        _, err = recv.communicate(timeout=30)
    finally:
        recv.kill()
    assert recv.returncode == 0, err
    contents = [p.read_bytes() for p in folder.iterdir()]
    assert len(contents) == 3 and all(c == jpeg_bytes for c in contents)


def test_python_receives_what_pixgram_send_and_msg_sent(tmp_path, jpeg_file):
    binary = pixgram_binary()
    with pixgram.Receiver("127.0.0.1:0") as rx:
        addr = "%s:%d" % rx.address
        send = subprocess.Popen([binary, "send", "--to", addr, str(jpeg_file)],
                                stderr=subprocess.PIPE, text=True)
        frame = rx.recv(20)
        assert send.wait(20) == 0, send.stderr.read()
        msg = subprocess.Popen([binary, "msg", "--to", addr, '{"n": 1}'],
                               stderr=subprocess.PIPE, text=True)
        message = rx.recv(20)
        assert msg.wait(20) == 0, msg.stderr.read()
    assert bytes(frame) == jpeg_file.read_bytes()
    assert frame.meta["file"] == "photo.jpg"
    assert np.array_equal(frame.image(), pixgram.decode_image(jpeg_file.read_bytes()))
    assert isinstance(message, pixgram.Message) and message.json() == {"n": 1}


def test_the_drop_in_hub_receives_what_pixgram_send_sent(jpeg_file):
    binary = pixgram_binary()
    port = free_port()
    with imagezmq.ImageHub(f"udp://127.0.0.1:{port}", REQ_REP=False, timeout=20) as hub:
        send = subprocess.Popen(
            [binary, "send", "--to", f"127.0.0.1:{port}", str(jpeg_file), str(jpeg_file)],
            stderr=subprocess.PIPE, text=True,
        )
        name, jpg = hub.recv_jpg()
        name2, image = hub.recv_image()  # a JPEG without dtype/shape: decoded, BGR
        assert send.wait(20) == 0, send.stderr.read()
    assert name == name2 == "photo.jpg" and bytes(jpg) == jpeg_file.read_bytes()
    assert np.array_equal(image, pixgram.decode_image(jpeg_file.read_bytes()))
