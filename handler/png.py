"""Check the result: a PNG, RGBA, and an alpha channel that really varies.

LayerDiffuse that did not take effect gives an alpha that is constant or nearly so (a plain picture with
an opaque alpha, or an empty one); ``check_rgba`` refuses that, with the coverage figure, against a
threshold the caller passes in (``ALPHA_MAX_UNIFORM_ALPHA``), so it stays a pure function of its inputs.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from handler.errors import OutputError, TransparencyError

Box = tuple[int, int, int, int]  # left, top, right, bottom; right and bottom exclusive


@dataclass(frozen=True)
class AlphaStats:
    width: int
    height: int
    alpha_min: int
    alpha_max: int
    alpha_mean: float
    transparent: float  # fraction of pixels with alpha 0
    opaque: float  # fraction of pixels with alpha 255
    bbox: Box | None  # the visible pixels (alpha > 0); None when there are none

    def as_dict(self) -> dict[str, Any]:
        stats = asdict(self)
        stats["bbox"] = list(self.bbox) if self.bbox is not None else None  # as JSON will have it
        return stats


def percent(fraction: float, decimals: int = 4) -> str:
    """A fraction as a percentage rounded down: 0.99985 -> '99.985', 1 -> '100'. Rounding down never shows a
    share just under the threshold as over it, nor anything short of all as 100."""
    scale = 10 ** (decimals + 2)
    value = math.floor(fraction * scale + 1e-6) / 10**decimals
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def _over(fraction: float, threshold: float) -> str:
    """The share as a percentage, with as many decimals as it takes to differ from the threshold's."""
    decimals = 4
    while percent(fraction, decimals) == percent(threshold, decimals) and decimals < 10:
        decimals += 1
    return percent(fraction, decimals)


def decode(data: bytes, *, rgba: bool = True) -> Image.Image:
    """The output, loaded: a PNG, in RGBA unless ``rgba`` is off (an opaque layer). Raises OutputError for
    anything else."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise OutputError(f"the output is {image.format}, not PNG")
            if rgba and image.mode != "RGBA":
                raise OutputError(f"the output PNG is {image.mode}, not RGBA: the workflow lost the alpha channel")
            image.load()
            return image
    except (UnidentifiedImageError, OSError) as exc:
        raise OutputError(f"the output is not a readable image: {exc}") from None


def _measure(image: Image.Image) -> tuple[AlphaStats, list[int]]:
    """The alpha figures of an image, and the alpha histogram they come from. An image without an alpha
    channel (an opaque layer's, in RGB) is measured as the RGBA it converts to: every pixel opaque."""
    if "A" not in image.getbands():
        image = image.convert("RGBA")  # P with a transparent colour too
    alpha = image.getchannel("A")
    low, high = alpha.getextrema()  # (int, int) for an 8-bit channel
    assert isinstance(low, int) and isinstance(high, int)
    histogram = alpha.histogram()
    width, height = image.size
    pixels = width * height
    stats = AlphaStats(
        width,
        height,
        low,
        high,
        round(sum(i * n for i, n in enumerate(histogram)) / pixels, 3),
        round(histogram[0] / pixels, 6),
        round(histogram[255] / pixels, 6),
        alpha.getbbox(),  # the box of the non-zero values
    )
    return stats, histogram


def alpha_stats(image: Image.Image) -> AlphaStats:
    return _measure(image)[0]


def check_alpha(image: Image.Image, *, max_uniform: float) -> AlphaStats:
    """The alpha statistics of an RGBA image. ``max_uniform`` is the largest fraction of the pixels that may be
    fully opaque (alpha 255), and the largest that may be fully transparent (alpha 0); 1.0 refuses only an
    alpha that is constant. Raises TransparencyError (alpha near uniform)."""
    stats, histogram = _measure(image)
    pixels = stats.width * stats.height
    for count, state in ((histogram[255], "opaque"), (histogram[0], "transparent")):
        if count / pixels > max_uniform or count == pixels:
            share = _over(count / pixels, max_uniform)
            raise TransparencyError(
                f"the output's alpha is {share}% {state}: {count} of {pixels} "
                f"pixels (threshold {percent(max_uniform)}%, ALPHA_MAX_UNIFORM_ALPHA): "
                "LayerDiffuse did not take effect"
            )
    if stats.alpha_min == stats.alpha_max:
        raise TransparencyError(
            f"the output's alpha is constant {stats.alpha_max} ({pixels} pixels): LayerDiffuse did not take effect"
        )
    return stats


def check_rgba(data: bytes, *, max_uniform: float) -> AlphaStats:
    """``check_alpha`` of an encoded output; raises OutputError (not an RGBA PNG) or TransparencyError."""
    return check_alpha(decode(data), max_uniform=max_uniform)
