"""The checked image made into the asset the request asked for: cropped to its visible pixels (``trim``, with a
margin) and encoded as PNG or lossless WebP (``format``).

With neither, the asset is ComfyUI's PNG as it was written, byte for byte. Any change re-encodes: a PNG at
SaveImage's own compression level, a WebP losslessly at the effort bench/asset_cost.py chose. Lossless WebP
keeps alpha exactly and RGB exactly wherever alpha > 0; under alpha 0 libwebp stores whatever colour
compresses best (``exact`` off), which no viewer shows and which made the files 5-10% smaller there.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from handler.png import AlphaStats, Box, alpha_stats
from handler.request import FORMATS

MIME_TYPES = {format: f"image/{format}" for format in FORMATS}
PNG_LEVEL = 4  # ComfyUI's SaveImage writes level 4: a trimmed PNG costs what an untrimmed one does
# Lossless, alpha exact; effort from bench/asset_cost.py (BENCHMARKS.md, "Asset output").
WEBP_OPTIONS: dict[str, Any] = {"lossless": True, "quality": 25, "method": 2, "exact": False}


@dataclass(frozen=True)
class Shape:
    """What the request asked of the image (``Request``'s ``format``, ``trim`` and ``trim_margin``)."""

    format: str = "png"
    trim: bool = False
    margin: int = 0

    @property
    def unchanged(self) -> bool:
        return self.format == "png" and not self.trim


@dataclass(frozen=True)
class Asset:
    data: bytes
    format: str
    alpha: AlphaStats  # of the returned image, but ``bbox`` on the generated canvas
    crop: Box | None  # the box cut from the canvas (margin included), with ``trim``

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]


def crop_box(bbox: Box, margin: int, size: tuple[int, int]) -> Box:
    """``bbox`` grown by ``margin`` on every side, clipped to the canvas."""
    left, top, right, bottom = bbox
    width, height = size
    return (max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin))


def encode(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    if format == "webp":
        image.save(buffer, format="WEBP", **WEBP_OPTIONS)
    else:
        image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def make(png: bytes, image: Image.Image, canvas: AlphaStats, shape: Shape) -> Asset:
    """The asset from ComfyUI's PNG (``png``, decoded as ``image``, measured as ``canvas``)."""
    if shape.unchanged:
        return Asset(png, "png", canvas, None)
    crop = None
    alpha = canvas
    if shape.trim and canvas.bbox is not None:  # a checked image always has visible pixels
        crop = crop_box(canvas.bbox, shape.margin, image.size)
        if crop == (0, 0, *image.size) and shape.format == "png":
            return Asset(png, "png", canvas, crop)  # nothing to cut: ComfyUI's bytes as they are
        image = image.crop(crop)
        alpha = dataclasses.replace(alpha_stats(image), bbox=canvas.bbox)
    return Asset(encode(image, shape.format), shape.format, alpha, crop)
