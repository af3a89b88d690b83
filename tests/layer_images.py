"""Input images for the layer modes, drawn with PIL (no binary fixtures): a background that is a picture, a
foreground that is a transparent subject, and their base64 as a job carries them."""

from __future__ import annotations

import base64
import io
import struct
import zlib

from PIL import Image, ImageDraw

from handler.generate import Generator


def encoded(image: Image.Image, format: str = "PNG") -> str:
    return raw(saved(image, format))


def background(size: tuple[int, int] = (128, 128), colour: tuple[int, int, int] = (40, 90, 200)) -> Image.Image:
    """An opaque picture: a horizon, a sun, a band of ground, in the given sky colour."""
    width, height = size
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(70, 140, 60))
    draw.ellipse((width // 8, height // 8, width // 3, height // 3), fill=(250, 220, 90))
    return image


def foreground(size: tuple[int, int] = (128, 128), colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    """A transparent subject: an opaque disc with a soft edge on alpha 0."""
    width, height = size
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4 - 2, height // 4 - 2, width * 3 // 4 + 2, height * 3 // 4 + 2), fill=(*colour, 128))
    draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(*colour, 255))
    return image


def offline(generator: Generator) -> Generator:
    """A generator whose layer modes count as available without asking a ComfyUI (unit tests: what the doors
    check before they submit)."""
    for mode in generator.modes.workflows:
        generator.modes.record(mode, [])
    return generator


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes: a decompression bomb that
    costs nothing to build or send."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def raw(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def saved(image: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


BACKGROUND = encoded(background())
FOREGROUND = encoded(foreground())
