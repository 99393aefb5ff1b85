"""Type stubs for pixgram's native module (re-exported by `pixgram`)."""

import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Address = str | tuple[str, int]
Path = str | os.PathLike[str]
Buffer = bytes | bytearray | memoryview | npt.NDArray[Any]

class Error(Exception):
    """Any pixgram failure; the subclasses say which."""

class Timeout(Error):
    """Nothing arrived in time, or the peer stopped answering."""

class Refused(Error):
    """The receiver refused the session, or nothing listens there."""

class AddressError(Error):
    """An address that cannot be resolved, bound or understood."""

class KeyFileError(Error):
    """A key file that cannot be used."""

class ImageError(Error):
    """Bytes that are not a JPEG or PNG, or an array that is not HxWx3 uint8."""

class Sent:
    """What became of everything a sender sent."""
    @property
    def acked(self) -> int: ...
    @property
    def lost(self) -> list[int]: ...

class Sender:
    """Sends frames and JSON messages to one receiver (see the module docs)."""
    def __init__(
        self,
        to: Address,
        mode: Literal["reliable", "live"] = "reliable",
        key_file: Path | None = None,
        window: int = 8,
        quality: int = 85,
        fps: float = 30.0,
        deadline: float | None = None,
        fec: float | None = None,
        timeout: float | None = None,
    ) -> None: ...
    def send(
        self,
        data: Buffer | Path,
        meta: dict[str, Any] | None = None,
        quality: int | None = None,
    ) -> int:
        """Sends encoded bytes, a file, or a numpy HxWx3 uint8 BGR array (as JPEG); the frame id."""
    def send_bytes(self, data: Buffer, meta: dict[str, Any] | None = None) -> int:
        """Sends any buffer's raw bytes as they are; the frame id."""
    def send_json(self, obj: Any) -> int:
        """Sends `obj` as a JSON message; its id."""
    def wait(self, timeout: float | None = None) -> bool:
        """Waits for every verdict; True if nothing is left in flight."""
    @property
    def acked(self) -> int: ...
    def close(self) -> Sent | None:
        """Waits for every verdict and closes the session (None if already closed)."""
    def __enter__(self) -> "Sender": ...
    def __exit__(self, *exc: object) -> bool: ...

class Frame:
    """A frame that arrived whole; its bytes through the buffer protocol, without a copy."""
    @property
    def peer(self) -> tuple[str, int]: ...
    @property
    def stream(self) -> int: ...
    @property
    def id(self) -> int: ...
    @property
    def meta(self) -> dict[str, Any]: ...
    @property
    def data(self) -> memoryview: ...
    def image(self) -> npt.NDArray[np.uint8]:
        """The image decoded to an HxWx3 uint8 BGR array, as cv2.imdecode gives."""
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __len__(self) -> int: ...

class Message:
    """A JSON message that arrived."""
    @property
    def peer(self) -> tuple[str, int]: ...
    @property
    def stream(self) -> int: ...
    @property
    def id(self) -> int: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...

class Receiver:
    """Serves any number of senders on one UDP port; iterable (Frame or Message)."""
    def __init__(
        self,
        listen: Address | None = None,
        key_file: Path | None = None,
        max_frame_size: int | None = None,
        max_peers: int | None = None,
    ) -> None: ...
    @property
    def address(self) -> tuple[str, int]: ...
    def recv(self, timeout: float | None = None) -> Frame | Message:
        """The next item; raises Timeout after `timeout` seconds. Ctrl-C interrupts."""
    def poll(self) -> Frame | Message | None:
        """What has already arrived, without waiting."""
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[Frame | Message]: ...
    def __next__(self) -> Frame | Message: ...
    def __enter__(self) -> "Receiver": ...
    def __exit__(self, *exc: object) -> bool: ...

def decode_image(data: Buffer) -> npt.NDArray[np.uint8]:
    """A JPEG or PNG decoded to an HxWx3 uint8 BGR array."""

def encode_jpeg(array: npt.NDArray[np.uint8], quality: int = 85) -> bytes:
    """An HxWx3 uint8 BGR array as JPEG bytes."""
