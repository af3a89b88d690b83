"""An answer's image, decoded with care, and the criteria on it: its format, RGBA, alpha and size, each against
what the job asked.

The bytes come from an endpoint not trusted yet. They are opened only as PNG or WebP (by their signature), their
size is read from the header and refused over MAX_PIXELS before a pixel is decoded (a header that claims
30000x30000 is a few bytes; its pixels would be 3.6 GB), and whatever else Pillow raises on bytes made to break
it is a failed criterion.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin, WebPImagePlugin

from handler.acceptance import values
from handler.acceptance.prompts import Case
from handler.acceptance.results import Criterion, Result
from handler.png import alpha_stats

MAX_PIXELS = 4096 * 4096  # 16 times the largest size a shipped workflow declares
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Opened by their plugin, not Image.open: Image.open refuses a large header before it can be measured here.
PLUGINS = {"png": PngImagePlugin.PngImageFile, "webp": WebPImagePlugin.WebPImageFile}


@dataclass(frozen=True)
class Picture:
    format: str  # "png" or "webp", from the bytes
    image: Image.Image  # decoded
    data: bytes  # as answered

    @property
    def mode(self) -> str:
        return self.image.mode


def kind_of(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "png"
    return "webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


def open_picture(data: bytes) -> Picture | str:
    """The image, decoded; or why not."""
    kind = kind_of(data)
    if kind is None:
        return f"not a PNG or WebP: {len(data)} bytes starting {values.printable(repr(data[:8]))}"
    try:
        image = PLUGINS[kind](io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            return (
                f"a {kind.upper()} whose header claims {width}x{height} pixels, over the {MAX_PIXELS} this run decodes"
            )
        if getattr(image, "is_animated", False):
            return f"an animated {kind.upper()}"
        image.load()
    except Exception as exc:  # bytes made to break Pillow: it raises more than it documents (SyntaxError, ...)
        return f"an unreadable {kind.upper()}: {type(exc).__name__}: {values.printable(str(exc))}"
    return Picture(kind, image, data)


def format_criterion(picture: Picture, case: Case, filename: Any, info: dict[str, Any]) -> Criterion:
    """The bytes, ``filename``, ``info.format`` and ``info.mime_type`` are all the format asked."""
    want = case.format
    problems = [
        f"{label} is {values.shown(got)}"
        for label, got, ok in (
            ("the image", picture.format, picture.format == want),
            ("info.format", info.get("format"), info.get("format") == want),
            ("info.mime_type", info.get("mime_type"), info.get("mime_type") == f"image/{want}"),
            ("filename", filename, isinstance(filename, str) and filename.endswith(f".{want}")),
        )
        if not ok
    ]
    detail = f"asked {want}; " + ("; ".join(problems) if problems else f"{want}, {len(picture.data)} bytes")
    return Criterion("format", not problems, detail)


def opaque_allowed(case: Case, info: dict[str, Any]) -> bool:
    """A trimmed WebP of an opaque crop has no alpha channel (README), when the worker says every pixel is."""
    return case.trim and values.number(values.obj(info.get("alpha")).get("opaque")) == 1


def is_opaque(picture: Picture) -> bool:
    if picture.mode == "RGB":
        return True
    return picture.mode == "RGBA" and picture.image.getchannel("A").getextrema()[0] == 255


def rgba_criterion(picture: Picture, case: Case, info: dict[str, Any]) -> Criterion:
    if case.mode == "background":
        opaque = is_opaque(picture)
        return Criterion("rgba", opaque, f"{picture.mode}: {'opaque' if opaque else 'not opaque'} (a background is)")
    if picture.mode == "RGB" and opaque_allowed(case, info):
        return Criterion("rgba", True, "RGB: a crop whose every pixel is opaque, as info.alpha says")
    return Criterion("rgba", picture.mode == "RGBA", picture.mode)


def alpha_criterion(result: Result, picture: Picture, max_uniform: float) -> Criterion:
    """Neither flat nor empty, by the worker's own rule; a trim only needs visible pixels (its crop may be all
    subject); a background has no alpha to check."""
    case = result.case
    if case.mode == "background":
        return Criterion("alpha", None, "a background is opaque")
    if picture.mode != "RGBA":
        return Criterion("alpha", case.trim, "no alpha channel")
    stats = alpha_stats(picture.image)
    result.alpha = stats.as_dict()
    detail = f"{stats.opaque:.2%} opaque, {stats.transparent:.2%} transparent, mean {stats.alpha_mean}"
    if case.trim:
        return Criterion("alpha", stats.alpha_max > 0, detail + ("" if stats.alpha_max else " (empty)"))
    flat, empty = stats.opaque > max_uniform, stats.transparent > max_uniform
    one = stats.alpha_min == stats.alpha_max
    why = " (flat)" if flat else " (empty)" if empty else f" (one value, {stats.alpha_min})" if one else ""
    return Criterion("alpha", not why, detail + why)


def size_criterion(result: Result, picture: Picture, info: dict[str, Any]) -> Criterion:
    """The size asked for (a test-mode worker runs smaller and says which), or with ``trim`` the crop: the
    visible pixels' box on that canvas, grown by the margin and clipped to it."""
    case = result.case
    result.size = picture.image.size
    asked = (case.width, case.height)
    reported = (info.get("width"), info.get("height"))
    canvas, note = expected_canvas(case, result.test_mode)
    if canvas is None:
        return Criterion("size", False, f"{note}; info.test_mode has no size")
    if reported != asked:
        note += f"; info says {values.shown(reported[0])}x{values.shown(reported[1])}"
    expected: tuple[int, int] | None = canvas
    if case.trim:
        crop, note = trimmed(info, canvas, int(case.asked("trim_margin", 0)), note)
        expected = (crop[2] - crop[0], crop[3] - crop[1]) if crop else None
    got = result.size
    return Criterion("size", reported == asked and got == expected, f"{note}; got {got[0]}x{got[1]}")


def expected_canvas(case: Case, test_mode: dict[str, int | None] | None) -> tuple[tuple[int, int] | None, str]:
    asked = f"asked {case.width}x{case.height}"
    if test_mode is None:
        return (case.width, case.height), asked
    width, height = test_mode.get("width"), test_mode.get("height")
    if width is None or height is None:
        return None, f"test mode: {asked}"
    return (width, height), f"test mode: {asked}, runs {width}x{height}"


def trimmed(info: dict[str, Any], canvas: tuple[int, int], margin: int, note: str) -> tuple[list[int] | None, str]:
    """The crop the worker should have cut, from the box it reports, when info.crop is that crop."""
    bbox = values.integers(values.obj(info.get("alpha")).get("bbox"), 4)
    crop = values.integers(info.get("crop"), 4)
    if bbox is None or crop is None:
        return None, f"{note}; trim: info.alpha.bbox {values.shown(bbox)}, info.crop {values.shown(crop)}"
    left, top, right, bottom = bbox
    want = [
        max(0, left - margin),
        max(0, top - margin),
        min(canvas[0], right + margin),
        min(canvas[1], bottom + margin),
    ]
    note += f"; trim: box {bbox} + margin {margin} is crop {want}"
    if crop != want:
        return None, f"{note}, info.crop says {crop}"
    return want, note
