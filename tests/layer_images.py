"""Input images for the layer modes, drawn with PIL (no binary fixtures): a background that is a picture, a
foreground that is a transparent subject, and their base64 as a job carries them; and valid files whose structure
makes them costly to read (repeated JPEG scans, many segments or chunks), built from PIL's output by hand."""

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


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes: a decompression bomb that
    costs nothing to build or send."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0"))
        + png_chunk(b"IEND", b"")
    )


def png_with(png: bytes, chunks: bytes, *, after_pixels: bool = False) -> bytes:
    """The PNG with ``chunks`` inserted after its header (IHDR), or before its end (IEND)."""
    at = len(png) - 12 if after_pixels else 8 + 25
    return png[:at] + chunks + png[at:]


def repeated_scans(image: Image.Image, repeats: int, **params: object) -> bytes:
    """The image as a progressive JPEG whose last scan, with the Huffman table written for it, comes ``repeats``
    more times before the end: valid, and libjpeg decodes each copy over every pixel."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", progressive=True, **params)
    data = buffer.getvalue()
    scan = data.rindex(b"\xff\xda")  # a scan's data never holds a marker
    table = data.rindex(b"\xff\xc4", 0, scan)
    start = table if table + 2 + int.from_bytes(data[table + 2 : table + 4], "big") == scan else scan
    end = len(data) - 2  # EOI
    return data[:end] + data[start:end] * repeats + data[end:]


def with_segments(jpeg: bytes, count: int) -> bytes:
    """The JPEG with ``count`` empty comment segments after its start."""
    return jpeg[:2] + b"\xff\xfe\x00\x02" * count + jpeg[2:]


def raw(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def saved(image: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


BACKGROUND = encoded(background())
FOREGROUND = encoded(foreground())
