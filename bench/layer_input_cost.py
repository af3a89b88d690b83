"""What a layer job's input image costs the worker before ComfyUI sees it, at a 1024x1024 target: the base64
decode, ``image_input.parse`` (which includes that decode, the header checks, the load, EXIF and RGBA),
``target_size`` and ``upload_png`` (the fit, the grey matte and the PNG encode, each also timed alone), against
a job's time (``--job-ms``, default the H100 run's warm p50 in BENCHMARKS.md). The upload to ComfyUI's
``/upload/image`` is not part of this; rows in parentheses are for it: the PNG stored uncompressed (level 0)
instead, and what decoding each PNG costs ComfyUI's LoadImage.

Inputs: ``foreground``, a 1024x1024 RGBA PNG cut-out (bench/output_cost.py's ``smooth``); ``background PNG``, an
opaque photo-like 1024x1024 PNG; ``background JPEG``, a 4000x3000 photo-like JPEG (gradients and grain, about 3 MB,
like a 12 MP camera's); ``background WebP``, the 1024x1024 photo as lossy WebP; and any file given with --png
(measured as a foreground).

    .venv/bin/python -m bench.layer_input_cost [--reps 5] [--size 1024] [--job-ms 4350] [--png FILE ...]
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench import output_cost
from bench.harness import print_table
from bench.output_cost import SAVEIMAGE_LEVEL, encode, smooth_image, timed
from handler import image_input

TARGET = (1024, 1024)
H100_WARM_P50_MS = 4350.0  # BENCHMARKS.md, "H100, 2026-11-26": warm job wall p50 4.347 s
PHOTO = (4000, 3000)


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes  # the file as the client sends it, before base64
    field: str  # "foreground" (must be a cut-out) or "background"


def photo(width: int, height: int, seed: int = 5) -> Image.Image:
    """A photo-like RGB picture: smooth gradients under sensor-like grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200 + 30
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * 8
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def saved(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decoded(png: bytes) -> None:
    with Image.open(io.BytesIO(png)) as image:
        image.load()


def cases(side: int) -> list[Case]:
    square = photo(side, side)
    return [
        Case(f"foreground PNG {side}x{side} RGBA", encode(smooth_image(side), SAVEIMAGE_LEVEL), "foreground"),
        Case(f"background PNG {side}x{side} opaque", encode(square, SAVEIMAGE_LEVEL), "background"),
        Case(f"background JPEG {PHOTO[0]}x{PHOTO[1]} q90", saved(photo(*PHOTO), "JPEG", quality=90), "background"),
        Case(f"background WebP {side}x{side} lossy q90", saved(square, "WEBP", quality=90), "background"),
    ]


def report(case: Case, reps: int, job_ms: float) -> float:
    """Print the case's table; return its total in milliseconds (parse + target_size + upload_png)."""
    text = base64.b64encode(case.data).decode()
    need_alpha = case.field == "foreground"
    image = image_input.parse(text, case.field, need_alpha=need_alpha)
    size = image_input.target_size(image.size, [TARGET], None, case.field)
    fit = image_input.fitted(image, size)
    flat = image_input.flatten(fit)
    upload = image_input.upload_png(image, size)
    stored = encode(flat, 0)
    steps = {
        "base64 decode (inside parse)": timed(lambda: binascii.a2b_base64(text, strict_mode=True), reps),
        "parse": timed(lambda: image_input.parse(text, case.field, need_alpha=need_alpha), reps),
        "target_size": timed(lambda: image_input.target_size(image.size, [TARGET], None, case.field), reps),
        "  fitted": timed(lambda: image_input.fitted(image, size), reps),
        "  flatten": timed(lambda: image_input.flatten(fit), reps),
        f"  PNG encode, level {image_input.UPLOAD_PNG_LEVEL}": timed(
            lambda: encode(flat, image_input.UPLOAD_PNG_LEVEL), reps
        ),
        "upload_png": timed(lambda: image_input.upload_png(image, size), reps),
        # For the upload's owner: level 0 (stored), and what decoding each costs ComfyUI's LoadImage.
        "(PNG encode, level 0)": timed(lambda: encode(flat, 0), reps),
        "(ComfyUI's decode of the upload PNG)": timed(lambda: decoded(upload), reps),
        "(ComfyUI's decode of a level-0 PNG)": timed(lambda: decoded(stored), reps),
    }
    ms = {name: summary.median * 1000 for name, summary in steps.items()}
    total = ms["parse"] + ms["target_size"] + ms["upload_png"]
    width, height = image.size
    rows = [
        ("input", f"{image.format} {width}x{height}, {len(case.data) / 1e6:.3f} MB, base64 {len(text) / 1e6:.3f} MB"),
        *((name, f"{value:8.1f} ms") for name, value in ms.items()),
        ("upload PNG", f"{len(upload) / 1e6:.3f} MB, {size[0]}x{size[1]} RGB (level 0: {len(stored) / 1e6:.3f} MB)"),
        ("total (parse + target_size + upload_png)", f"{total:8.1f} ms, {total / job_ms:.1%} of a {job_ms:g} ms job"),
    ]
    print_table(f"layer input, {case.name} -> {TARGET[0]}x{TARGET[1]}, median of {reps}", rows)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = output_cost.image_options(__doc__ or "", reps=5)
    parser.add_argument(
        "--job-ms", type=float, default=H100_WARM_P50_MS, help="the job time to compare with (default 4350)"
    )
    args = parser.parse_args(argv)
    given = [Case(f"{path.name} (given)", path.read_bytes(), "foreground") for path in args.png]
    totals = [(case.name, report(case, args.reps, args.job_ms)) for case in [*cases(args.size), *given]]
    rows = [(name, f"{total:8.1f} ms  {total / args.job_ms:6.1%} of the job") for name, total in totals]
    print_table(f"layer input totals against a {args.job_ms:g} ms job", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
