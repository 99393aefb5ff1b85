"""pixgram: images, camera frames and JSON messages over UDP.

    import pixgram
    with pixgram.Receiver("127.0.0.1:5000") as rx:          # one process
        for item in rx:                                     # Frame or Message
            if isinstance(item, pixgram.Frame):
                print(item.peer, item.id, len(item), item.meta, item.image().shape)

    with pixgram.Sender("127.0.0.1:5000") as tx:            # another
        tx.send("photo.jpg")                                # a path, bytes, or a numpy BGR array
        tx.send_json({"battery": 0.87})

`from pixgram import imagezmq` is a drop-in for ImageZMQ's ImageSender and ImageHub.
Every failure is a `pixgram.Error` (`Timeout`, `Refused`, `AddressError`, `KeyFileError`,
`ImageError`), except files that cannot be read (OSError).
"""

from ._native import (
    AddressError,
    Error,
    Frame,
    ImageError,
    KeyFileError,
    Message,
    Receiver,
    Refused,
    Sender,
    Sent,
    Timeout,
    decode_image,
    encode_jpeg,
)

__all__ = [
    "AddressError",
    "Error",
    "Frame",
    "ImageError",
    "KeyFileError",
    "Message",
    "Receiver",
    "Refused",
    "Sender",
    "Sent",
    "Timeout",
    "decode_image",
    "encode_jpeg",
]
