"""A drop-in for ImageZMQ (https://github.com/jeffbass/imagezmq) over pixgram.

Change the import and the URL scheme; nothing else:

    from pixgram import imagezmq                     # was: import imagezmq
    sender = imagezmq.ImageSender(connect_to="udp://hub:5555")   # was: tcp://hub:5555
    reply = sender.send_image("cam1", frame)         # numpy array, any dtype and shape
    hub = imagezmq.ImageHub(open_port="udp://*:5555")
    msg, frame = hub.recv_image()
    hub.send_reply(b"OK")

REQ_REP=True (the default): every send waits for the hub's reply, as ImageZMQ's REQ/REP does.
The frame goes reliably (acknowledged, resent if lost); its metadata names a UDP port on which
the sender listens for replies, and the hub sends its reply there as a pixgram frame of its
own, on a session of its own, tagged with the id of the frame it answers (no change to the
wire protocol: see docs/PROTOCOL.md, "Application replies").

REQ_REP=False is publish/subscribe: the sender never waits for a reply and frames go live
(latest frame wins, as `pixgram send --mode live`: a frame has a deadline, one lost or late is
dropped rather than resent and never delays a later one). The hub returns frames in order as
they complete; `ImageHub(..., latest_only=True)` also skips every complete frame that a newer
one has overtaken by the time the hub asks (for a hub slower than its senders).

One difference from ImageZMQ: the hub always opens the port and senders connect to it, in
both modes (ImageZMQ's PUB/SUB sender binds and the hub connects).
"""

from __future__ import annotations

import collections
import re

import numpy as np

from . import _native
from ._native import AddressError, Error, Timeout

__all__ = ["ImageSender", "ImageHub", "AddressError", "Error", "Timeout"]

# Hub side: senders to answer, one per sender's reply port, the least recently used
# closed beyond this many (a remote peer must not grow the hub's memory without bound).
MAX_REPLY_SESSIONS = 64

# latest_only: at most this many newer items are taken (and all but the newest frame
# dropped) before a receive returns, so a sender faster than the hub cannot hold it forever.
MAX_DRAINED = 1000

_URL = re.compile(r"^(?P<scheme>[a-z0-9]+)://(?P<host>\[[^\]]*\]|[^:/]*):(?P<port>\d+)$")


def _parse(url: str) -> tuple[str, int]:
    match = _URL.match(url)
    if not match:
        raise AddressError(f"{url!r}: expected udp://HOST:PORT")
    scheme, host, port = match["scheme"], match["host"].strip("[]"), int(match["port"])
    if scheme != "udp":
        raise AddressError(
            f"{url!r}: pixgram runs over UDP; write udp://{match['host']}:{port} "
            f"instead of {scheme}://"
        )
    return host, port


class ImageSender:
    """Sends images to an ImageHub: `send_image(msg, array)` and `send_jpg(msg, jpg)`.

    In REQ/REP mode each returns the hub's reply (bytes); in PUB/SUB mode, None.
    `reply_timeout` (seconds, default None: wait as long as it takes) bounds the wait for a
    reply (`pixgram.Timeout`). Ctrl-C interrupts any wait.
    """

    def __init__(
        self,
        connect_to: str = "udp://127.0.0.1:5555",
        REQ_REP: bool = True,
        *,
        key_file: str | None = None,
        window: int = 8,
        reply_timeout: float | None = None,
    ) -> None:
        host, port = _parse(connect_to)
        if host in ("*", "", "0.0.0.0"):
            raise AddressError(
                f"{connect_to!r}: an ImageSender connects to the hub's host "
                f"(udp://HUB:{port}); the hub opens the port (udp://*:{port})"
            )
        self.REQ_REP = REQ_REP
        self.reply_timeout = reply_timeout
        self._replies = None
        if REQ_REP:
            self._replies = _native.Receiver(("::" if ":" in host else "0.0.0.0", 0), key_file=key_file)
            self._meta = {"reply_port": self._replies.address[1]}
            self._sender = _native.Sender((host, port), key_file=key_file, window=window)
        else:
            self._meta = {}
            # Live: a frame late by more than a second is dropped rather than resent.
            self._sender = _native.Sender(
                (host, port), mode="live", deadline=1.0, key_file=key_file, window=window
            )

    def send_image(self, msg, image):
        """Sends `image` (a numpy array of any dtype and shape) raw, with `msg`."""
        array = np.ascontiguousarray(image)
        meta = dict(self._meta, msg=msg, dtype=str(array.dtype), shape=list(array.shape))
        return self._send(array, meta)

    def send_jpg(self, msg, jpg_buffer):
        """Sends `jpg_buffer` (JPEG bytes, or any bytes-like object) as it is, with `msg`."""
        return self._send(jpg_buffer, dict(self._meta, msg=msg))

    def _send(self, data, meta):
        frame_id = self._sender.send_bytes(data, meta)
        if not self.REQ_REP:
            return None
        # The frame is acknowledged once the hub has all of it; then its reply is awaited.
        # (Waiting for the acknowledgement first keeps resending lost pieces going.)
        self._sender.wait(self.reply_timeout)
        while True:
            item = self._replies.recv(self.reply_timeout)
            if isinstance(item, _native.Frame) and item.meta.get("reply_to") == frame_id:
                return bytes(item)

    def close(self) -> None:
        """Waits for the last frames' acknowledgements and closes the sockets."""
        self._sender.close()
        if self._replies is not None:
            self._replies.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class ImageHub:
    """Receives images from any number of ImageSenders on one UDP port.

    `recv_image()` -> (msg, numpy array equal to the one sent); `recv_jpg()` -> (msg, JPEG
    bytes as a read-only memoryview, no copy); `send_reply(b"OK")` in REQ/REP mode.
    `timeout` (seconds, default None: wait as long as it takes) bounds each receive
    (`pixgram.Timeout`).
    """

    def __init__(
        self,
        open_port: str = "udp://*:5555",
        REQ_REP: bool = True,
        *,
        key_file: str | None = None,
        timeout: float | None = None,
        latest_only: bool = False,
    ) -> None:
        host, port = _parse(open_port)
        if host in ("*", ""):
            host = "0.0.0.0"
        self.REQ_REP = REQ_REP
        self.timeout = timeout
        self.latest_only = latest_only and not REQ_REP
        self.frames_skipped = 0  # counter: frames overtaken and skipped (latest_only)
        self._key_file = key_file
        self._rx = _native.Receiver((host, port), key_file=key_file)
        self._asker = None  # (host, reply port, frame id) of the frame to answer
        self._reply_senders: collections.OrderedDict = collections.OrderedDict()
        self.reply_sessions_closed = 0  # counter: reply sessions closed past the limit

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) this hub listens on."""
        return self._rx.address

    def _next_frame(self):
        item = self._rx.recv(self.timeout)
        while not isinstance(item, _native.Frame):
            item = self._rx.recv(self.timeout)
        if self.latest_only:
            # Take whatever else has already arrived, keep the newest.
            for _ in range(MAX_DRAINED):
                newer = self._rx.poll()
                if newer is None:
                    break
                if isinstance(newer, _native.Frame):
                    item = newer
                    self.frames_skipped += 1
        meta = item.meta
        if self.REQ_REP:
            port = meta.get("reply_port")
            self._asker = (item.peer[0], port, item.id) if isinstance(port, int) else None
        return meta, item

    def recv_image(self):
        """The next (msg, image): the array as sent, same dtype and shape (read-only)."""
        meta, frame = self._next_frame()
        if "dtype" in meta and "shape" in meta:
            image = np.frombuffer(frame, dtype=meta["dtype"]).reshape(meta["shape"])
        else:
            image = frame.image()  # a JPEG or PNG sent by send_jpg or `pixgram send`
        return meta.get("msg", meta.get("file")), image

    def recv_jpg(self):
        """The next (msg, jpg_buffer): the bytes as sent, a read-only memoryview."""
        meta, frame = self._next_frame()
        return meta.get("msg", meta.get("file")), frame.data

    def send_reply(self, reply_message=b"OK"):
        """Answers the last frame received (REQ/REP mode only).

        The reply is on its way when this returns; `close()` the hub (or leave its `with`)
        before the program ends, so the last replies are delivered.
        """
        if not self.REQ_REP:
            raise Error("send_reply is for REQ_REP=True; publish/subscribe has no reply")
        if self._asker is None:
            raise Error("no frame to answer: its sender asked for no reply")
        host, port, frame_id = self._asker
        self._asker = None
        sender = self._reply_senders.pop((host, port), None)
        if sender is None:
            sender = _native.Sender((host, port), key_file=self._key_file, window=8)
            if len(self._reply_senders) >= MAX_REPLY_SESSIONS:
                _, oldest = self._reply_senders.popitem(last=False)
                oldest.close()
                self.reply_sessions_closed += 1
        self._reply_senders[(host, port)] = sender
        # Its acknowledgement (and any resend) is the sender's background thread's.
        sender.send_bytes(reply_message, {"reply_to": frame_id})

    def close(self) -> None:
        """Closes the port and the reply sessions."""
        for sender in self._reply_senders.values():
            sender.close()
        self._reply_senders.clear()
        self._rx.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
