"""Asset output cost at 1024x1024: PNG against lossless WebP (size, encode time at the effort levels Pillow offers),
what trim costs and saves, the whole of ``handler.asset.make`` for each option as a job runs it, and the RunPod
response per delivery mode against the 10/20 MB limits.

Images: ``smooth`` (bench/output_cost.py's cut-out: an anti-aliased subject with soft edges, one colour under alpha
0), ``smooth+colour`` (the same with colour and grain under alpha 0 too, as LayerDiffuse's decoder leaves it),
``noise`` (the incompressible upper bound), and any PNG given with --png (e.g. a generated result).

WebP efforts are libwebp's lossless presets (``cwebp -z 0..9``) as Pillow's ``quality`` (effort) and ``method``;
``exact`` keeps RGB under alpha 0, which the handler does not (handler/asset.py).

    .venv/bin/python -m bench.asset_cost [--reps 3] [--size 1024] [--png FILE ...]
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from bench import output_cost
from bench.harness import Summary, print_table
from bench.output_cost import LIMITS, SAVEIMAGE_LEVEL, encode, noise_image, smooth_image
from handler import asset
from handler.doors.runpod.payload import output_size, success_output
from handler.png import check_alpha, decode
from handler.results import Result
from handler.settings import Settings

SIZE = 1024
# libwebp's lossless presets -z 0, 2, 5, 6, 8, 9 as (quality, method); -z 9 is its slowest and smallest.
EFFORTS = ((0, 0), (25, 2), (50, 4), (75, 4), (90, 5), (100, 6))
SLOW_S = 1.0  # an encode slower than this is timed once
BASE64_KEYS = ("url", "image_base64")


def colour_under_alpha(image: Image.Image, seed: int = 11) -> Image.Image:
    """The image with a smooth colour and grain where alpha is 0: what a decoder leaves there, unseen."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image).copy()
    height, width = pixels.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    under = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200 + 30
    under += rng.normal(0.0, 3.0, under.shape)
    hidden = pixels[..., 3] == 0
    pixels[hidden, :3] = np.clip(under[hidden], 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGBA")


def webp(image: Image.Image, quality: int, method: int, exact: bool = False) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=True, quality=quality, method=method, exact=exact)
    return buffer.getvalue()


def timed(fn: Callable[[], object], reps: int) -> Summary:
    return output_cost.timed(fn, reps, slow_s=SLOW_S)


def formats(image: Image.Image, png: bytes, reps: int) -> list[tuple[str, str]]:
    """PNG at SaveImage's level against lossless WebP at each effort."""
    png_time = timed(lambda: encode(image, SAVEIMAGE_LEVEL), reps).median
    rows = [(f"PNG level {SAVEIMAGE_LEVEL} (SaveImage)", f"{len(png) / 1e6:6.3f} MB  encode {png_time * 1000:7.1f} ms")]
    chosen = (asset.WEBP_OPTIONS["quality"], asset.WEBP_OPTIONS["method"])
    for quality, method in EFFORTS:
        for exact in (False, True) if (quality, method) == chosen else (False,):
            data = webp(image, quality, method, exact)
            took = timed(lambda q=quality, m=method, e=exact: webp(image, q, m, e), reps)  # type: ignore[misc]
            name = f"WebP q{quality} m{method}{' exact' if exact else ''}"
            mark = "  <- handler" if (quality, method) == chosen and not exact else ""
            rows.append(
                (
                    name,
                    f"{len(data) / 1e6:6.3f} MB ({len(data) / len(png):5.1%} of PNG)  encode "
                    f"{took.median * 1000:7.1f} ms (n={took.n}){mark}",
                )
            )
    return rows


def options(png: bytes, reps: int) -> list[tuple[str, str]]:
    """What a job adds for each option: decode and check (always), then ``asset.make``."""
    check = timed(lambda: check_alpha(decode(png), max_uniform=1.0), reps).median
    rows = [("decode + transparency check (every job)", f"{check * 1000:7.1f} ms")]
    image = decode(png)
    stats = check_alpha(image, max_uniform=1.0)
    for shape in (
        asset.Shape(),
        asset.Shape(trim=True),
        asset.Shape(trim=True, margin=16),
        asset.Shape("webp"),
        asset.Shape("webp", trim=True, margin=16),
    ):
        made = asset.make(png, image, stats, shape)
        took = timed(lambda s=shape: asset.make(png, image, stats, s), reps).median  # type: ignore[misc]
        crop = f"crop {made.crop[2] - made.crop[0]}x{made.crop[3] - made.crop[1]}" if made.crop else "no crop"
        name = f"make {shape.format}{', trim' if shape.trim else ''}{f' +{shape.margin}' if shape.margin else ''}"
        rows.append((name, f"{took * 1000:7.1f} ms  {len(made.data) / 1e6:6.3f} MB  {crop}"))
    return rows


def responses(png: bytes, settings: Settings) -> list[tuple[str, str]]:
    """The RunPod response for each delivery, PNG and WebP, against the limits of /run and /runsync."""
    image = decode(png)
    stats = check_alpha(image, max_uniform=1.0)
    rows = []
    for shape in (asset.Shape(), asset.Shape("webp")):
        made = asset.make(png, image, stats, shape)
        result = Result(made.data, f"alpha_x.{made.format}", {"seed": 1}, made.mime_type)
        for delivery in ("inline", "base64"):
            total = output_size(success_output(result, settings, "bench", delivery), base64_keys=BASE64_KEYS)
            fits = ", ".join(f"{route} {'fits' if total <= limit else 'OVER'}" for route, limit in LIMITS.items())
            rows.append((f"{made.format} {delivery}", f"response {total / 1e6:6.3f} MB ({fits})"))
    return rows


def report(name: str, image: Image.Image, reps: int, settings: Settings) -> None:
    png = encode(image, SAVEIMAGE_LEVEL)
    rows = formats(image, png, reps) + options(png, reps) + responses(png, settings)
    b64 = timed(lambda: base64.b64encode(png), reps).median
    rows.append(("base64 of the PNG", f"{b64 * 1000:7.1f} ms"))
    print_table(f"asset cost, {name}, {image.width}x{image.height} RGBA, median of {reps}", rows)


def main(argv: list[str] | None = None) -> int:
    args = output_cost.arguments(__doc__ or "", argv, reps=3)
    settings = output_cost.bench_output_settings()
    smooth = smooth_image(args.size)
    images = {"smooth": smooth, "smooth+colour": colour_under_alpha(smooth), "noise": noise_image(args.size)}
    for name, image in {**images, **output_cost.given_pngs(args.png)}.items():
        report(name, image, args.reps, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
