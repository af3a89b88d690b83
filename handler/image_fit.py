"""A layer job's input image, decoded, made into what ComfyUI gets: the size rule (the allowed size whose aspect
is nearest the image's), the fit (cover and centre-crop, premultiplied Lanczos), LayerDiffuse's 50% grey matte,
and the PNG that is uploaded."""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from PIL import Image

from handler.errors import InputError
from handler.image_input import InputImage, Size, decode

MATTE = 0.5  # LayerDiffuse flattens RGBA over 50% grey (lib_layerdiffusion/utils.py, rgba2rgbfp32)
_MATTE_510 = round(510 * MATTE)  # the matte in 510ths of full scale: flatten's arithmetic stays in integers
# Stored, not compressed: over loopback the bigger file costs less than compressing it and ComfyUI's decoding it,
# 16-72 ms a job at 1024x1024 (bench/layer_input_cost.py --upload).
UPLOAD_PNG_LEVEL = 0


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
    raise InputError(
        f"'{field}' is {width}x{height} (aspect {width / height:.2f}), which fits {best[0]}x{best[1]}; it does not "
        f"fit the requested {requested[0]}x{requested[1]}: crop it, or omit width/height",
        field=field,
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


def fitted(source: Image.Image, size: Size) -> Image.Image:
    """The decoded image (RGBA, or RGB for one without alpha) scaled to cover ``size`` (Lanczos) and centre-cropped
    to it, RGBA. Resampled premultiplied (RGBa): colour under alpha 0 would otherwise bleed into the edges of what
    is visible."""
    if source.size == size:
        return source.convert("RGBA")  # a copy: an RGBa round trip would cost precision under low alpha, for nothing
    box = _cover_box(source.size, size)
    lanczos = Image.Resampling.LANCZOS
    if source.mode == "RGB" or _opaque(source):
        # No alpha to weigh by: three channels, and no premultiplication, take 2/3 of the time (bench).
        result = (source if source.mode == "RGB" else source.convert("RGB")).resize(size, lanczos, box=box)
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
    """What ComfyUI gets: the image decoded, fitted to ``size``, flattened, as an RGB PNG encoded fast. Only these
    bytes outlive the call: the decoded pixels are freed as each step makes the next."""
    buffer = io.BytesIO()
    flatten(fitted(decode(image, rgba=False), size)).save(buffer, format="PNG", compress_level=UPLOAD_PNG_LEVEL)
    return buffer.getvalue()
