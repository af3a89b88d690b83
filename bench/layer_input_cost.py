"""What a layer job's input image costs the worker before ComfyUI sees it, at a 1024x1024 target: the base64
decode, ``image_input.parse`` (which includes that decode, the container and header checks and the EXIF orientation),
``target_size`` and ``upload_png`` (the load and RGBA (``decode``), the fit, the grey matte and the PNG encode, each
also timed alone), against
a job's time (``--job-ms``, default the H100 run's warm p50 in BENCHMARKS.md). With ``--upload`` it starts a
ComfyUI (test mode, loopback) and times the upload itself, ``ComfyClient.upload_image`` to ``/upload/image``, which
the total then includes. ComfyUI's LoadImage decodes the PNG (the job's time, not the worker's); rows in
parentheses are the other PNG level's encode, upload and decode, which the choice of ``UPLOAD_PNG_LEVEL`` rests on.

Inputs: ``foreground``, a 1024x1024 RGBA PNG cut-out (bench/output_cost.py's ``smooth``); ``background PNG``, an
opaque photo-like 1024x1024 PNG; ``background JPEG``, a 4000x3000 photo-like JPEG (gradients and grain, about 3 MB,
like a 12 MP camera's); ``background WebP``, the 1024x1024 photo as lossy WebP; and any file given with --png
(measured as a foreground).

    .venv/bin/python -m bench.layer_input_cost [--reps 5] [--size 1024] [--job-ms 4350] [--upload] [--png FILE ...]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench import output_cost
from bench.harness import bench_settings, log_folder, print_table, running_comfyui
from bench.output_cost import SAVEIMAGE_LEVEL, encode, smooth_image, timed
from handler import image_fit, image_input
from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline

Uploader = Callable[[bytes], None]
UPLOAD = "upload to ComfyUI (/upload/image)"
OTHER_LEVEL = 1 if image_fit.UPLOAD_PNG_LEVEL == 0 else 0  # the PNG level the choice is measured against
UPLOAD_TIMEOUT_S = 30.0

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


@contextlib.contextmanager
def comfyui_uploader() -> Iterator[Uploader]:
    """A ComfyUI in test mode on a free loopback port, and an upload to it as the job does it; each upload
    overwrites one file, removed at the end."""
    args = argparse.Namespace(device="cpu", size=None, steps=None)
    settings = bench_settings(args)
    name = "alpha_bench_upload.png"
    with running_comfyui(settings, log_folder(None, "alpha-bench-upload-") / "comfyui.log"):
        client = ComfyClient(settings.comfyui_url)

        def upload(png: bytes) -> None:
            client.upload_image(name, png, Deadline(UPLOAD_TIMEOUT_S))

        try:
            yield upload
        finally:
            client.close()
            (settings.input_dir / name).unlink(missing_ok=True)


def report(case: Case, reps: int, job_ms: float, upload: Uploader | None = None) -> float:
    """Print the case's table; return its total in milliseconds (parse + target_size + upload_png, and the
    upload to ComfyUI with ``upload``)."""
    text = base64.b64encode(case.data).decode()
    need_alpha = case.field == "foreground"
    image = image_input.parse(text, case.field, need_alpha=need_alpha)
    size = image_fit.target_size(image.size, [TARGET], None, case.field)
    pixels = image_input.decode(image)
    fit = image_fit.fitted(pixels, size)
    flat = image_fit.flatten(fit)
    png = image_fit.upload_png(image, size)
    level, other = image_fit.UPLOAD_PNG_LEVEL, OTHER_LEVEL
    alternative = encode(flat, other)
    steps = {
        "base64 decode (inside parse)": timed(lambda: binascii.a2b_base64(text, strict_mode=True), reps),
        "parse": timed(lambda: image_input.parse(text, case.field, need_alpha=need_alpha), reps),
        "target_size": timed(lambda: image_fit.target_size(image.size, [TARGET], None, case.field), reps),
        "  decode": timed(lambda: image_input.decode(image), reps),
        "  fitted": timed(lambda: image_fit.fitted(pixels, size), reps),
        "  flatten": timed(lambda: image_fit.flatten(fit), reps),
        f"  PNG encode, level {level}": timed(lambda: encode(flat, level), reps),
        "upload_png": timed(lambda: image_fit.upload_png(image, size), reps),
        **({UPLOAD: timed(lambda: upload(png), reps)} if upload else {}),
        # Not the worker's time but the job's: ComfyUI's LoadImage decodes the file.
        "ComfyUI's decode of it": timed(lambda: decoded(png), reps),
        # The PNG level's choice: the other level's encode, upload and decode.
        f"(PNG encode, level {other})": timed(lambda: encode(flat, other), reps),
        **({f"(upload, level {other})": timed(lambda: upload(alternative), reps)} if upload else {}),
        f"(ComfyUI's decode, level {other})": timed(lambda: decoded(alternative), reps),
    }
    ms = {name: summary.median * 1000 for name, summary in steps.items()}
    total = ms["parse"] + ms["target_size"] + ms["upload_png"] + ms.get(UPLOAD, 0.0)
    chosen = sum(ms.get(name, 0.0) for name in (f"  PNG encode, level {level}", UPLOAD, "ComfyUI's decode of it"))
    rival = sum(value for name, value in ms.items() if name.startswith("(") and f"level {other}" in name)
    width, height = image.size
    rows = [
        ("input", f"{image.format} {width}x{height}, {len(case.data) / 1e6:.3f} MB, base64 {len(text) / 1e6:.3f} MB"),
        *((name, f"{value:8.1f} ms") for name, value in ms.items()),
        (
            "upload PNG",
            f"{len(png) / 1e6:.3f} MB, {size[0]}x{size[1]} RGB (level {other}: {len(alternative) / 1e6:.3f} MB)",
        ),
        (f"encode + upload + decode, level {level} vs {other}", f"{chosen:8.1f} ms vs {rival:.1f} ms"),
        (
            f"total ({'with' if upload else 'without'} the upload)",
            f"{total:8.1f} ms, {total / job_ms:.1%} of a {job_ms:g} ms job",
        ),
    ]
    print_table(f"layer input, {case.name} -> {TARGET[0]}x{TARGET[1]}, median of {reps}", rows)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = output_cost.image_options(__doc__ or "", reps=5)
    parser.add_argument(
        "--job-ms", type=float, default=H100_WARM_P50_MS, help="the job time to compare with (default 4350)"
    )
    parser.add_argument("--upload", action="store_true", help="also time the upload to a ComfyUI it starts")
    args = parser.parse_args(argv)
    given = [Case(f"{path.name} (given)", path.read_bytes(), "foreground") for path in args.png]
    with comfyui_uploader() if args.upload else contextlib.nullcontext() as upload:
        totals = [(case.name, report(case, args.reps, args.job_ms, upload)) for case in [*cases(args.size), *given]]
    rows = [(name, f"{total:8.1f} ms  {total / args.job_ms:6.1%} of the job") for name, total in totals]
    print_table(f"layer input totals against a {args.job_ms:g} ms job", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
