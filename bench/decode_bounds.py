"""What a layer job's input image may cost the worker, and the bounds on it (issue 25; ``handler/image_input.py``,
``handler/image_container.py``, ``handler/layers.py``'s decode pool).

1. **Refusals.** Files whose structure makes them costly, refused by the request's parse (``Request.parse``, as a
   door runs it): the issue's progressive JPEG (5000x5000, its last scan repeated 10,000 times), the largest such
   file under 6 MiB, 6 MiB of empty JPEG segments or PNG chunks, a PNG text bomb, 300-frame animations, a WAVE
   file. With ``--pil``, PIL's own open and load of each, once: what the worker did before (the JPEG with 1,000
   repeats: 10,000 would take minutes).
2. **Decodes at 25 MP**, accepted: a photo-like baseline JPEG (5000x5000 q85), the same progressive (libjpeg's 10
   scans), a flat one at the scan limit (30 scans: the most a 25 MP JPEG may have), a 5000x5000 PNG; ``parse``,
   ``decode`` (to RGBA) and ``upload_png`` (decode, fit to the nearest shipped size, grey matte, PNG).
3. **Memory of ``--jobs`` jobs at once** (default 12), each a 5000x5000 PNG background, through what a job runs
   before ComfyUI (``Request.parse``, then ``Generator.prepare``: the decode pool) in a child process, the jobs
   keeping what they hold until all are done (as jobs waiting for ComfyUI would); the child's peak RSS (VmHWM)
   against its RSS (psutil) before the jobs. ``unbounded``: the same jobs, each decoding in its
   own thread at once and holding the decoded image, as the worker did before the pool.

    .venv/bin/python -m bench.decode_bounds [--reps 5] [--jobs 12] [--pil] [--skip-memory]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from bench.harness import Summary, print_table
from bench.layer_input_cost import photo, saved
from bench.output_cost import timed
from handler import image_fit, image_input
from handler.deadline import Deadline
from handler.errors import InputError
from handler.generate import Generator
from handler.image_input import MAX_IMAGE_BYTES
from handler.paths import REPO
from handler.request import Request
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.helpers import free_port
from tests.layer_images import offline, png_chunk, png_with, repeated_scans, with_segments

SCAN_BYTES = 64  # the repeated scan of a flat 5000x5000 progressive JPEG, with its Huffman table
MEMORY_SIDE = 5000


def flat_progressive(repeats: int) -> bytes:
    return repeated_scans(Image.new("RGB", (5000, 5000), (40, 90, 200)), repeats)


def animation(fmt: str, frames: int = 300) -> bytes:
    images = [Image.new("RGB", (64, 64), (i % 256, i // 256, 0)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, save_all=True, append_images=images[1:], lossless=True)
    return buffer.getvalue()


def hostile(pil: bool) -> list[tuple[str, bytes]]:
    small_png = saved(Image.new("RGB", (64, 64), (40, 90, 200)), "PNG")
    small_jpeg = saved(Image.new("RGB", (64, 64), (40, 90, 200)), "JPEG")
    most = (MAX_IMAGE_BYTES - 250_000) // SCAN_BYTES
    text_bomb = png_chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(1_000_000))) * 70
    files = [
        (
            "JPEG 5000x5000, 10,000 scans repeated" if not pil else "JPEG 5000x5000, 1,000 scans repeated",
            flat_progressive(1_000 if pil else 10_000),
        ),
        *([] if pil else [(f"JPEG 5000x5000, {most:,} scans repeated", flat_progressive(most))]),
        ("JPEG, 6 MiB of empty segments", with_segments(small_jpeg, (MAX_IMAGE_BYTES - 1000) // 4)),
        ("PNG, 6 MiB of empty chunks", png_with(small_png, png_chunk(b"prVt", b"") * ((MAX_IMAGE_BYTES - 1000) // 12))),
        (
            "PNG, 6 MiB of empty chunks after the pixels",
            png_with(small_png, png_chunk(b"prVt", b"") * ((MAX_IMAGE_BYTES - 1000) // 12), after_pixels=True),
        ),
        ("PNG, 70 zTXt chunks of 1 MB of text", png_with(small_png, text_bomb)),
        ("APNG, 300 frames", animation("PNG")),
        ("animated WebP, 300 frames", animation("WEBP")),
        ("WAVE", b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<I", 16) + bytes(20)),
    ]
    return [(name, data) for name, data in files if len(data) <= MAX_IMAGE_BYTES]


def refusal(text: str) -> str:
    try:
        Request.parse({"prompt": "x", "mode": "foreground", "background": text})
    except InputError as exc:
        return exc.message
    return "taken"


def pil_cost(data: bytes) -> str:
    """PIL's open and load of the file, once, as the worker did them before the container checks."""
    started = time.perf_counter()
    try:
        with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as image:
            image.load()
    except Exception as exc:  # what PIL says is the point here
        return f"{time.perf_counter() - started:8.3f} s (then {type(exc).__name__})"
    return f"{time.perf_counter() - started:8.3f} s"


def refusals(reps: int, pil: bool) -> None:
    rows = []
    for name, data in hostile(pil):
        text = base64.b64encode(data).decode()
        took = timed(lambda: refusal(text), reps)  # noqa: B023  # called at once, in this iteration
        words = refusal(text).removeprefix("'background' ")
        rows.append((f"{name} ({len(data) / 1e6:.2f} MB)", f"{took.median * 1000:8.1f} ms  {words[:70]}"))
        if pil:
            rows.append(("  PIL's open + load", pil_cost(data)))
    print_table(f"refused by Request.parse, median of {reps}", rows)


def decode_rows(name: str, data: bytes, sizes: list[tuple[int, int]], reps: int) -> list[tuple[str, str]]:
    text = base64.b64encode(data).decode()
    image = image_input.parse(text, "background", need_alpha=False)
    size = image_fit.target_size(image.size, sizes, None, "background")
    steps: dict[str, Summary] = {
        "parse": timed(lambda: image_input.parse(text, "background", need_alpha=False), reps),
        "decode": timed(lambda: image_input.decode(image), reps),
        f"upload_png ({size[0]}x{size[1]})": timed(lambda: image_fit.upload_png(image, size), reps),
    }
    return [
        (f"{name} ({len(data) / 1e6:.2f} MB)", ""),
        *((f"  {step}", summary.ms()) for step, summary in steps.items()),
    ]


def decodes(reps: int) -> None:
    side = MEMORY_SIDE
    picture = photo(side, side)
    cases = {
        f"baseline JPEG {side}x{side} q85": saved(picture, "JPEG", quality=85),
        f"progressive JPEG {side}x{side} q85 (10 scans)": repeated_scans(picture, 0, quality=85),
        # The most a 25 MP JPEG may cost: 30 scans (20 repeats of a flat picture's last, which is small).
        f"progressive JPEG {side}x{side} flat, 30 scans": repeated_scans(
            Image.new("RGB", (side, side), (40, 90, 200)), 20
        ),
        "PNG 5000x5000 gradient": saved(gradient(MEMORY_SIDE), "PNG"),
    }
    del picture
    sizes = list(Workflow.load(Settings().workflow).sizes)
    rows = [row for name, data in cases.items() for row in decode_rows(name, data, sizes, reps)]
    print_table(f"accepted at 25 MP, median of {reps}", rows)


def gradient(side: int) -> Image.Image:
    """Smooth, so that a 25 MP PNG stays well under 6 MiB."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    pixels = np.stack([x / side, y / side, (x + y) / (2 * side)], axis=-1) * 200 + 30
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


# --- memory: a child process per variant ---


def peak_rss() -> int:
    """This process's peak RSS in bytes: Linux's VmHWM. Not ``ru_maxrss``, which a child takes over from its parent
    at the fork (the parent here holds the test pictures)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024


def child(variant: str, jobs: int, path: Path) -> int:
    """Run by the parent: ``jobs`` jobs at once on the PNG in ``path``; prints one JSON line."""
    text = base64.b64encode(path.read_bytes()).decode()
    settings = Settings().replace(comfyui_port=free_port())
    generator = offline(Generator(settings))
    held: list[object] = []
    before = psutil.Process().memory_info().rss

    def one() -> None:
        request = Request.parse({"prompt": "x", "mode": "foreground", "background": text})
        if variant == "bounded":
            held.append(generator.prepare(request, Deadline(600)))
        else:  # as before the pool: decoded at once in every job's thread, the pixels held with the upload
            assert request.background is not None
            pixels = image_input.decode(request.background)
            buffer = io.BytesIO()
            image_fit.flatten(image_fit.fitted(pixels, (1024, 1024))).save(buffer, format="PNG", compress_level=0)
            held.append((pixels, buffer.getvalue()))

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    peak = peak_rss()
    print(json.dumps({"before": before, "peak": peak, "wall": wall, "held": len(held)}))
    return 0


def memory(jobs: int) -> None:
    rows = []
    png = saved(gradient(MEMORY_SIDE), "PNG")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "background.png"
        path.write_bytes(png)
        for variant in ("bounded", "unbounded"):
            command = [sys.executable, "-m", "bench.decode_bounds", "--child", variant, "--jobs", str(jobs), str(path)]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            growth = (figures["peak"] - figures["before"]) / 2**20
            rows.append(
                (
                    variant,
                    f"peak RSS growth {growth:7.0f} MiB (RSS before {figures['before'] / 2**20:.0f} MiB), "
                    f"all {figures['held']} jobs prepared in {figures['wall']:.2f} s",
                )
            )
    side = f"{MEMORY_SIDE}x{MEMORY_SIDE}"
    print_table(f"{jobs} jobs at once, each a {side} PNG background ({len(png) / 1e6:.2f} MB), one child each", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--pil", action="store_true", help="also time PIL's own open and load of each refused file")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", choices=("bounded", "unbounded"), help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.jobs, args.path)
    refusals(args.reps, args.pil)
    decodes(args.reps)
    if not args.skip_memory:
        memory(args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
