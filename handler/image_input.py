"""An input image of a layer job (``background`` for ``mode: "foreground"``, ``foreground`` for ``mode:
"background"``): parsed from base64, checked, fitted to the workflow's size and flattened as LayerDiffuse does,
into the PNG that is uploaded to ComfyUI.

Every refusal is an InputError that names the field. The choices:

- The value is plain base64 or ``data:image/<png|jpeg|jpg|webp>;base64,<data>``; the data URI's type is only
  checked for being one of those, the format is decided by the content. ASCII whitespace (spaces, tabs, line
  breaks: ``base64`` wraps at 76) is tolerated and removed, then the rest is decoded strictly. The length limit
  counts the string as sent, whitespace included: it is there for RunPod's payload limit.
- Only PIL's PNG, JPEG and WebP plugins ever parse the bytes; a signature table names other formats in the
  refusal. A JPEG with further pictures stored after it (MPO, as phone cameras write) gives its first; an
  animated PNG or WebP is refused: which frame was meant is not ours to guess.
- ``parse`` (the request's validation) reads the container and the header, never the pixels: pixels, the shorter
  side, frames, a JPEG's scans and marker segments, a PNG's chunks (``handler.image_container``), the EXIF
  orientation. It keeps the file's bytes, at most 6 MiB, and no pixel.
- ``decode`` (in the job, in the worker's decode pool: ``handler.layers``) loads the pixels, turns them upright and
  checks a foreground's alpha; ``upload_png`` makes them the PNG ComfyUI gets, and only those bytes outlive it.
- The image's metadata (EXIF, ICC profile) is dropped after the rotation; colour profiles are not applied, as
  ComfyUI's own LoadImage does not apply them either.
"""

from __future__ import annotations

import binascii
import dataclasses
import io
import math
import re
import threading
import warnings
from typing import Any

import numpy as np
from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

from handler import image_container
from handler.errors import InputError

Size = tuple[int, int]  # width, height

MAX_IMAGE_BYTES = 6 * 1024 * 1024  # as base64, 8 MiB: with the rest of the JSON, under RunPod's 10 MB /run limit
DATA_URI_ALLOWANCE = 32  # "data:image/jpeg;base64," is 23 characters
MAX_BASE64_CHARS = 4 * math.ceil(MAX_IMAGE_BYTES / 3) + DATA_URI_ALLOWANCE
_MIB = f"{MAX_IMAGE_BYTES / 2**20:g} MiB"
MAX_PIXELS = 25_000_000  # a 24 MP photo passes
MIN_SIDE = 64
# What decoding costs beyond the pixels (handler/image_container.py, bench/decode_bounds.py). libjpeg decodes each
# scan over the whole image: common progressive encoders write 6 to 18 scans (libjpeg: 10 in colour, 18 in CMYK).
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 750_000_000  # scans x pixels: 30 scans at 25 MP, about 1.2 s of libjpeg at the worst
MAX_JPEG_SEGMENTS = 1_000  # a file has a few dozen: its tables (one per scan at most), EXIF, ICC and XMP parts
MAX_PNG_CHUNKS = 10_000  # 6 MiB in chunks of 630 bytes; encoders write 8 to 64 kB
FORMATS = ("png", "jpeg", "webp")

_PIL_PLUGINS = ["PNG", "JPEG", "WEBP"]  # the JPEG plugin opens an MPO too: a JPEG with more pictures after it
_PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp"}
_DATA_URI = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)
_URI_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/webp"}
_WHITESPACE = str.maketrans("", "", " \t\r\n")
_SIDES_SWAPPED = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # EXIF orientation -> what shows the image upright, as ImageOps.exif_transpose
# Not handler.fields' kind(): that module may come to import this one.
_JSON_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
}
# warnings.catch_warnings swaps the process-wide filter list; two at once could leave one behind.
_WARNINGS_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class InputImage:
    """An input image checked from its container and header, not decoded (``decode`` does that)."""

    data: bytes = dataclasses.field(repr=False)  # the file
    field: str
    format: str  # one of FORMATS
    size: Size  # upright: after the EXIF orientation
    has_alpha: bool  # the file carries an alpha channel or a tRNS transparency
    need_alpha: bool  # a foreground: its alpha must not be flat, which only its pixels tell
    orientation: Image.Transpose | None = None  # what turns the decoded pixels upright

    @property
    def size_bytes(self) -> int:
        return len(self.data)


def _refuse(field: str, words: str) -> InputError:
    return InputError(f"'{field}' {words}", field=field)


def _base64_text(value: Any, field: str) -> str:
    """The base64 characters of the value, whitespace removed; its length is checked before anything else."""
    if not isinstance(value, str):
        got = _JSON_KINDS.get(type(value), type(value).__name__)
        raise _refuse(field, f"must be a string (base64, or a data:image/...;base64 URI), got {got}")
    if len(value) > MAX_BASE64_CHARS:
        raise _refuse(
            field,
            f"is {len(value)} characters long; the limit is {MAX_BASE64_CHARS} (an image of at most "
            f"{MAX_IMAGE_BYTES} bytes, {_MIB}, as base64)",
        )
    text = value.strip()
    if text[:5].lower() == "data:":
        text = _data_uri_payload(text, field)
    text = text.translate(_WHITESPACE)
    if not text:
        raise _refuse(field, "is empty; it must be a base64-encoded PNG, JPEG or WebP image")
    return text


def _data_uri_payload(text: str, field: str) -> str:
    match = _DATA_URI.match(text, 0, 256)  # the header only, never a scan of megabytes of data
    if match is None:
        raise _refuse(field, "is not a valid data URI; use data:image/<png|jpeg|webp>;base64,<data>")
    media_type, parameters = match.group(1).lower(), match.group(2).lower()
    if media_type not in _URI_TYPES:
        raise _refuse(field, f"is a data URI of type {media_type!r}; only image/png, image/jpeg, image/webp")
    if parameters != ";base64":
        raise _refuse(field, "is a data URI that is not ';base64'; use data:image/<png|jpeg|webp>;base64,<data>")
    return text[match.end() :]


def _decode(text: str, field: str) -> bytes:
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII text
        raise _refuse(field, f"is not valid base64 ({exc})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _refuse(field, f"is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES} ({_MIB})")
    return data


def _check_container(data: bytes, field: str) -> tuple[int, bytes | None]:
    """What PIL would read one Python call at a time, and a JPEG's scans, counted before PIL reads anything.
    Returns the scans (0 for the other formats), whose cost is checked once the header gave the pixels, and a
    PNG's eXIf chunk, wherever it is."""
    if data.startswith(image_container.JPEG_SOI):
        jpeg = image_container.jpeg(data, MAX_JPEG_SEGMENTS, MAX_JPEG_SCANS)
        if jpeg.scans > MAX_JPEG_SCANS:
            raise _refuse(field, f"is a JPEG of over {MAX_JPEG_SCANS} scans, each decoded over every pixel; re-save it")
        if jpeg.segments > MAX_JPEG_SEGMENTS:
            raise _refuse(field, f"is a JPEG of over {MAX_JPEG_SEGMENTS} marker segments; re-save it")
        return jpeg.scans, None
    if data.startswith(image_container.PNG_SIGNATURE):
        png = image_container.png(data, MAX_PNG_CHUNKS)
        if png.chunks > MAX_PNG_CHUNKS:
            raise _refuse(field, f"is a PNG of over {MAX_PNG_CHUNKS} chunks; re-save it")
        return 0, png.exif
    return 0, None


def _unreadable(exc: Exception) -> str:
    """Why PIL could not read the file: a PNG metadata chunk over PIL's limits is named, since the image may be
    whole (PIL's message names the limit it hit)."""
    if "MAX_TEXT_CHUNK" in str(exc):
        return (
            f"has a compressed PNG metadata chunk (zTXt, iTXt or iCCP) that expands to over "
            f"{PngImagePlugin.MAX_TEXT_CHUNK} bytes; remove the metadata"
        )
    if "MAX_TEXT_MEMORY" in str(exc):
        return f"has over {PngImagePlugin.MAX_TEXT_MEMORY} bytes of PNG text metadata; remove the metadata"
    return "is truncated or corrupt"


def _open(data: bytes, field: str) -> Image.Image:
    """The image, identified from its header and not decoded. PIL's own decompression-bomb check runs here;
    its warning is made an error, refused like its error, so that it never reaches the log."""
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=_PIL_PLUGINS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(field, f"has over {Image.MAX_IMAGE_PIXELS} pixels; the limit is {MAX_PIXELS}") from None
    except UnidentifiedImageError:
        raise _refuse(field, image_container.not_ours(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _refuse(field, _unreadable(exc)) from None


def _check_header(image: Image.Image, field: str, scans: int) -> None:
    """What the header says, before the pixels are decoded: their number, the sides, the frames, and a JPEG's
    scans, each decoded over all the pixels."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _refuse(field, f"is {width}x{height} ({width * height} pixels); the limit is {MAX_PIXELS} pixels")
    if min(width, height) < MIN_SIDE:
        raise _refuse(field, f"is {width}x{height}; each side must be at least {MIN_SIDE} pixels")
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise _refuse(field, f"is animated ({frames} frames); send a still image")
    if scans * width * height > MAX_JPEG_SCAN_PIXELS:
        raise _refuse(
            field,
            f"is a {width}x{height} JPEG of {scans} scans, each decoded over every pixel: {scans * width * height} "
            f"scan-pixels; the limit is {MAX_JPEG_SCAN_PIXELS} (scans x pixels): re-save it as baseline, or smaller",
        )


def _orientation(image: Image.Image, png_exif: bytes | None, field: str) -> Image.Transpose | None:
    """What turns the pixels upright, from the EXIF orientation (or XMP's), read without decoding: a PNG's eXIf
    chunk after its pixels is found by the container walk, where PIL would load the pixels to reach it."""
    if png_exif is not None and "exif" not in image.info:
        image.info["exif"] = b"Exif\x00\x00" + png_exif  # as PIL's own eXIf reader stores it
    try:
        orientation = Image.Image.getexif(image).get(ExifTags.Base.Orientation)  # the base reads only the header's
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _refuse(field, "has EXIF metadata that cannot be read") from None
    return _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None


def parse(value: Any, field: str, *, need_alpha: bool) -> InputImage:
    """The input image from the request's value, checked without decoding its pixels; ``need_alpha``: it must be
    a cut-out (a foreground)."""
    data = _decode(_base64_text(value, field), field)
    scans, png_exif = _check_container(data, field)
    with _open(data, field) as opened:
        _check_header(opened, field, scans)
        pil_format, (width, height) = opened.format or "", opened.size
        has_alpha = opened.has_transparency_data
        orientation = _orientation(opened, png_exif, field)
    if need_alpha and not has_alpha:
        why = " (a JPEG cannot have one)" if pil_format in ("JPEG", "MPO") else ""
        raise _refuse(field, f"has no alpha channel{why}; it must be a transparent RGBA PNG or WebP")
    size = (height, width) if orientation in _SIDES_SWAPPED else (width, height)
    return InputImage(data, field, _PIL_FORMATS[pil_format], size, has_alpha, need_alpha, orientation)


def _load(image: Image.Image, field: str) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _refuse(field, _unreadable(exc)) from None


def _converted(image: Image.Image, mode: str) -> Image.Image:
    """The image in ``mode`` (RGBA, or RGB), without its metadata. PIL's convert handles palettes, tRNS, grey and
    CMYK; 16-bit grey it would clip to white, so that keeps its high byte here (in RGBA)."""
    if image.mode.startswith("I;16"):
        raw = np.asarray(image)
        grey = (raw >> 8).astype(np.uint8)
        opaque = raw != image.info.get("transparency", -1)
        out = Image.fromarray(np.dstack([grey, grey, grey, np.where(opaque, 255, 0).astype(np.uint8)]), "RGBA")
    else:
        out = image if image.mode == mode else image.convert(mode)  # a file already in the mode is not copied
    out.info = {}
    return out


def _check_transparency(image: Image.Image, field: str) -> None:
    """A foreground must be a cut-out: not one alpha value everywhere."""
    low, high = image.getchannel("A").getextrema()  # (int, int) for an 8-bit channel
    assert isinstance(low, int) and isinstance(high, int)
    if low == high:
        state = {255: "is fully opaque", 0: "is fully transparent"}.get(low, f"has a constant alpha {low}")
        raise _refuse(field, f"{state} (every pixel's alpha is {low}); it must be a subject on a transparent ground")


def decode(image: InputImage, *, rgba: bool = True) -> Image.Image:
    """The pixels: decoded, turned upright, RGBA (alpha 255 where the file had none), without metadata; a
    foreground's alpha checked. Without ``rgba``, a file without alpha stays RGB: the fit needs no alpha channel,
    and an RGBA copy of 25 MP is 100 MB more."""
    opened = _open(image.data, image.field)  # not closed: closing would drop the pixels an RGBA file keeps
    _load(opened, image.field)
    upright = opened if image.orientation is None else opened.transpose(image.orientation)
    del opened  # a turned image's source is freed before the conversion allocates
    pixels = _converted(upright, "RGBA" if rgba or image.has_alpha else "RGB")
    if image.need_alpha:
        _check_transparency(pixels, image.field)
    return pixels
