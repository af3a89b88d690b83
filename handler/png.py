"""Check the result: a PNG, RGBA, and an alpha channel that is not constant."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from handler.errors import OutputError, TransparencyError


@dataclass(frozen=True)
class AlphaStats:
    width: int
    height: int
    alpha_min: int
    alpha_max: int
    alpha_mean: float
    transparent: float  # fraction of pixels with alpha 0
    opaque: float  # fraction of pixels with alpha 255

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_rgba(data: bytes) -> AlphaStats:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise OutputError(f"the output is {image.format}, not PNG")
            if image.mode != "RGBA":
                raise OutputError(f"the output PNG is {image.mode}, not RGBA: the workflow lost the alpha channel")
            alpha = image.getchannel("A")
            low, high = alpha.getextrema()  # (int, int) for an 8-bit channel
            assert isinstance(low, int) and isinstance(high, int)
            histogram = alpha.histogram()
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise OutputError(f"the output is not a readable image: {exc}") from None
    pixels = width * height
    stats = AlphaStats(width, height, int(low), int(high),
                       round(sum(i * n for i, n in enumerate(histogram)) / pixels, 3),
                       round(histogram[0] / pixels, 6), round(histogram[255] / pixels, 6))
    if low == high:
        state = "fully transparent" if high == 0 else "fully opaque" if high == 255 else f"constant {high}"
        raise TransparencyError(f"the output's alpha is {state} ({pixels} pixels): LayerDiffuse did not take effect")
    return stats
