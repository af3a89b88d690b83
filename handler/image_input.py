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
- Pixels and the shorter side are checked from the header, before anything is decoded (both are the same after
  the EXIF rotation, which is applied after the load).
- The image's metadata (EXIF, ICC profile) is dropped after the rotation; colour profiles are not applied, as
  ComfyUI's own LoadImage does not apply them either.
"""

from __future__ import annotations

import binascii
import io
import math
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from handler.errors import InputError

Size = tuple[int, int]  # width, height

MAX_IMAGE_BYTES = 6 * 1024 * 1024  # as base64, 8 MiB: with the rest of the JSON, under RunPod's 10 MB /run limit
DATA_URI_ALLOWANCE = 32  # "data:image/jpeg;base64," is 23 characters
MAX_BASE64_CHARS = 4 * math.ceil(MAX_IMAGE_BYTES / 3) + DATA_URI_ALLOWANCE
_MIB = f"{MAX_IMAGE_BYTES / 2**20:g} MiB"
MAX_PIXELS = 25_000_000  # a 24 MP photo passes
MIN_SIDE = 64
FORMATS = ("png", "jpeg", "webp")
MATTE = 0.5  # LayerDiffuse flattens RGBA over 50% grey (lib_layerdiffusion/utils.py, rgba2rgbfp32)
_MATTE_510 = round(510 * MATTE)  # the matte in 510ths of full scale: flatten's arithmetic stays in integers
# Stored, not compressed: over loopback the bigger file costs less than compressing it and ComfyUI's decoding it,
# 16-72 ms a job at 1024x1024 (bench/layer_input_cost.py --upload).
UPLOAD_PNG_LEVEL = 0

_PIL_PLUGINS = ["PNG", "JPEG", "WEBP"]  # the JPEG plugin opens an MPO too: a JPEG with more pictures after it
_PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp"}
_DATA_URI = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)
_URI_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/webp"}
_WHITESPACE = str.maketrans("", "", " \t\r\n")
_OURS = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"RIFF", "WebP"))
_OTHERS = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"%PDF", "PDF"),
)
# Not handler.fields' kind(): that module may come to import this one.
_JSON_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
}
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}
# warnings.catch_warnings swaps the process-wide filter list; two at once could leave one behind.
_WARNINGS_LOCK = threading.Lock()


@dataclass(frozen=True)
class InputImage:
    image: Image.Image  # loaded, EXIF orientation applied, RGBA (alpha 255 where the file had none)
    format: str  # one of FORMATS
    has_alpha: bool  # the file carried an alpha channel or a tRNS transparency
    size_bytes: int  # the decoded file's bytes

    @property
    def size(self) -> Size:
        return self.image.size


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


def _not_ours(data: bytes) -> str:
    """Why PIL's PNG, JPEG and WebP plugins could not identify the bytes, named from their signature."""
    if any(data.startswith(magic) for magic, _ in _OURS):
        return "is truncated or corrupt (its header could not be read)"
    found = next((name for magic, name in _OTHERS if data.startswith(magic)), None)
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00":  # BMP's reserved bytes: "BM" alone is text
        found = "BMP"
    if data[4:8] == b"ftyp":
        found = _FTYP_BRANDS.get(data[8:12], found)
    if found is None:
        return "is not an image; it must be a PNG, JPEG or WebP file"
    return f"is not a PNG, JPEG or WebP image (found {found})"


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
        raise _refuse(field, _not_ours(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _refuse(field, "is truncated or corrupt") from None


def _check_header(image: Image.Image, field: str) -> None:
    """What the header says, before the pixels are decoded."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _refuse(field, f"is {width}x{height} ({width * height} pixels); the limit is {MAX_PIXELS} pixels")
    if min(width, height) < MIN_SIDE:
        raise _refuse(field, f"is {width}x{height}; each side must be at least {MIN_SIDE} pixels")
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise _refuse(field, f"is animated ({frames} frames); send a still image")


def _load(image: Image.Image, field: str) -> Image.Image:
    """The pixels decoded and turned upright (EXIF orientation)."""
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _refuse(field, "is truncated or corrupt") from None
    return image


def _rgba(image: Image.Image) -> Image.Image:
    """The image in RGBA, without its metadata. PIL's convert handles palettes, tRNS, grey and CMYK; 16-bit
    grey it would clip to white, so that keeps its high byte here."""
    if image.mode.startswith("I;16"):
        raw = np.asarray(image)
        grey = (raw >> 8).astype(np.uint8)
        opaque = raw != image.info.get("transparency", -1)
        rgba = Image.fromarray(np.dstack([grey, grey, grey, np.where(opaque, 255, 0).astype(np.uint8)]), "RGBA")
    else:
        rgba = image.convert("RGBA")
    rgba.info = {}
    return rgba


def _check_transparency(image: InputImage, field: str) -> None:
    """A foreground must be a cut-out: an alpha channel, and not one value everywhere."""
    if not image.has_alpha:
        why = " (a JPEG cannot have one)" if image.format == "jpeg" else ""
        raise _refuse(field, f"has no alpha channel{why}; it must be a transparent RGBA PNG or WebP")
    low, high = image.image.getchannel("A").getextrema()  # (int, int) for an 8-bit channel
    assert isinstance(low, int) and isinstance(high, int)
    if low == high:
        state = {255: "is fully opaque", 0: "is fully transparent"}.get(low, f"has a constant alpha {low}")
        raise _refuse(field, f"{state} (every pixel's alpha is {low}); it must be a subject on a transparent ground")


def parse(value: Any, field: str, *, need_alpha: bool) -> InputImage:
    """The input image from the request's value; ``need_alpha``: it must be a cut-out (a foreground)."""
    data = _decode(_base64_text(value, field), field)
    with _open(data, field) as opened:
        _check_header(opened, field)
        pil_format = opened.format or ""
        has_alpha = opened.has_transparency_data
        image = _rgba(_load(opened, field))
    parsed = InputImage(image, _PIL_FORMATS[pil_format], has_alpha, len(data))
    if need_alpha:
        _check_transparency(parsed, field)
    return parsed


def _aspect_distance(size: Size, other: Size) -> Fraction:
    """A monotone function of |log(w/h) - log(W/H)|, exact: the larger of the two aspects' ratio and its
    inverse. Floats would make a tie (1:1 between 1152x896 and 896x1152) depend on rounding."""
    ratio = Fraction(size[0] * other[1], size[1] * other[0])
    return max(ratio, 1 / ratio)


def target_size(size: Size, sizes: Sequence[Size], requested: Size | None, field: str) -> Size:
    """The allowed size whose aspect is nearest the image's (the first in ``sizes`` on a tie); a ``requested``
    size must be that near (a tie is taken), or it is refused."""
    best = min(sizes, key=lambda allowed: _aspect_distance(size, allowed))
    if requested is None:
        return best
    if _aspect_distance(size, requested) == _aspect_distance(size, best):
        return requested
    width, height = size
    raise _refuse(
        field,
        f"is {width}x{height} (aspect {width / height:.2f}), which fits {best[0]}x{best[1]}; it does not fit the "
        f"requested {requested[0]}x{requested[1]}: crop it, or omit width/height",
    )


def _cover_box(source: Size, size: Size) -> tuple[float, float, float, float]:
    """The centred region of ``source`` with the aspect of ``size``: scaled by max(W/w, H/h), it covers
    ``size`` exactly. One side is the source's whole side, in integers, so the box never overshoots it."""
    (width, height), (out_width, out_height) = source, size
    if out_width * height >= out_height * width:  # the width decides
        crop_height = out_height * width / out_width
        return (0.0, (height - crop_height) / 2, float(width), (height + crop_height) / 2)
    crop_width = out_width * height / out_height
    return ((width - crop_width) / 2, 0.0, (width + crop_width) / 2, float(height))


def _opaque(image: Image.Image) -> bool:
    return image.getchannel("A").getextrema() == (255, 255)


def fitted(image: InputImage, size: Size) -> Image.Image:
    """The image scaled to cover ``size`` (Lanczos) and centre-cropped to it, RGBA. Resampled premultiplied
    (RGBa): colour under alpha 0 would otherwise bleed into the edges of what is visible."""
    source = image.image
    if source.size == size:
        return source.copy()  # an RGBa round trip would cost precision under low alpha, for nothing
    box = _cover_box(source.size, size)
    lanczos = Image.Resampling.LANCZOS
    if not image.has_alpha or _opaque(source):
        # No alpha to weigh by: three channels, and no premultiplication, take 2/3 of the time (bench).
        result = source.convert("RGB").resize(size, lanczos, box=box)
        result.putalpha(255)
        return result
    return source.convert("RGBa").resize(size, lanczos, box=box).convert("RGBA")


def flatten(image: Image.Image) -> Image.Image:
    """RGB over LayerDiffuse's 50% grey: 0.5 + (rgb - 0.5) * a, then to 8 bits by truncation as its to255unit8
    does. Computed exactly in integers: 255 * that is (255 * (255 - A) + 2 * v * A) / 510 for 8-bit v and A.
    Its own float32 code gives v - 1 for opaque v from 1 to 63 (and 1 less in 233 of the 65,536 (v, A) pairs);
    here an opaque pixel stays as it is, and alpha 0 gives 127."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    if _opaque(rgba):
        return rgba.convert("RGB")
    pixels = np.asarray(rgba).astype(np.uint32)
    rgb, alpha = pixels[..., :3], pixels[..., 3:]
    flat = (_MATTE_510 * (255 - alpha) + 2 * rgb * alpha) // 510
    return Image.fromarray(flat.astype(np.uint8), "RGB")


def upload_png(image: InputImage, size: Size) -> bytes:
    """What ComfyUI gets: the image fitted to ``size``, flattened, as an RGB PNG encoded fast."""
    buffer = io.BytesIO()
    flatten(fitted(image, size)).save(buffer, format="PNG", compress_level=UPLOAD_PNG_LEVEL)
    return buffer.getvalue()
