"""Shared helpers: loopback addresses, test images, the `pixgram` binary."""

import os
import pathlib
import shutil
import socket

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def free_port() -> int:
    """A UDP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gradient(height=120, width=160) -> np.ndarray:
    """A smooth BGR test image (JPEG keeps it close), blue growing left to right."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)  # blue
    image[..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)  # green
    image[..., 2] = 40  # red
    return image


@pytest.fixture
def jpeg_bytes() -> bytes:
    """A 320x240 JPEG made here."""
    import pixgram

    return pixgram.encode_jpeg(gradient(240, 320), 90)


@pytest.fixture
def jpeg_file(tmp_path, jpeg_bytes) -> pathlib.Path:
    """That JPEG in a file."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes)
    return path


def pixgram_binary() -> str:
    """The `pixgram` CLI: $PIXGRAM_BIN (CI sets it: then it must exist), else a built one."""
    explicit = os.environ.get("PIXGRAM_BIN")
    if explicit:
        assert os.access(explicit, os.X_OK), f"PIXGRAM_BIN={explicit} is not an executable"
        return explicit
    targets = [os.environ.get("CARGO_TARGET_DIR"), str(REPO / "target")]
    for target in filter(None, targets):
        for profile in ("release", "debug"):
            path = pathlib.Path(target) / profile / "pixgram"
            if os.access(path, os.X_OK):
                return str(path)
    found = shutil.which("pixgram")
    if found:
        return found
    pytest.skip("no pixgram binary: build it with `cargo build --release` or set PIXGRAM_BIN")
