"""Output cost of a 1024x1024 RGBA result: PNG encode time and size at each compression level, the decode
and alpha check the handler does, base64, and the whole RunPod response against its 10/20 MB limits.

ComfyUI's SaveImage writes level 4 (fixed in the node); the handler passes those bytes through, so a
different level would cost a custom save node or a re-encode. The response carries the PNG twice as
base64 (``url`` and ``image_base64``); it is built by the handler's own ``success_output``.

Images: ``smooth`` (synthetic: a soft-edged object with shading and fine grain, alpha 0 around it, like a
cut-out), ``noise`` (uniform random RGBA: the incompressible upper bound), and any PNG given with --png
(e.g. a generated result).

    .venv/bin/python -m bench.output_cost [--reps 5] [--png FILE ...]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from bench.harness import Summary, print_table
from handler.doors.runpod.payload import output_size, success_output
from handler.paths import REPO
from handler.png import check_rgba
from handler.results import Result
from handler.settings import Settings

SIZE = 1024
LIMITS = {"/run": 10 * 10**6, "/runsync": 20 * 10**6}
SAVEIMAGE_LEVEL = 4


def smooth_image(size: int = SIZE, seed: int = 7) -> Image.Image:
    """A cut-out-like RGBA image: an anti-aliased soft shape with shading and grain, transparent around it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    body = ((x - 0.5) / 0.32) ** 2 + ((y - 0.55) / 0.38) ** 2
    head = ((x - 0.5) / 0.16) ** 2 + ((y - 0.2) / 0.14) ** 2
    distance = np.minimum(np.sqrt(body), np.sqrt(head))  # 1 on the outline
    alpha = np.clip((1.0 - distance) * size / 6.0, 0.0, 1.0)  # a few pixels of anti-aliasing
    alpha *= np.where(y > 0.75, 0.55, 1.0)  # a translucent part, like glass
    shade = 0.35 + 0.65 * np.clip(1.2 - distance, 0.0, 1.0)
    rgb = np.stack([shade * (0.8 + 0.2 * x), shade * (0.5 + 0.3 * y), shade * 0.35 + 0.1 * x], axis=-1)
    rgb = rgb * 255 + rng.normal(0.0, 2.0, rgb.shape) * (alpha[..., None] > 0)  # grain on the object only
    pixels = np.concatenate([rgb, alpha[..., None] * 255], axis=-1)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGBA")


def noise_image(size: int = SIZE, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 4), dtype=np.uint8), "RGBA")


def encode(image: Image.Image, level: int, metadata: PngInfo | None = None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level, pnginfo=metadata)
    return buffer.getvalue()


def timed(fn: Callable[[], object], reps: int, slow_s: float | None = None) -> Summary:
    """``reps`` timings of ``fn``; just one when the first took longer than ``slow_s``."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
        if slow_s is not None and times[0] > slow_s:
            break
    return Summary.of(times)


def saveimage_metadata() -> PngInfo:
    """What SaveImage embeds without --disable-metadata: the prompt graph and the workflow, as text chunks."""
    graph = json.loads((REPO / "workflows" / "alpha_txt2img.json").read_text())
    graph["3"]["inputs"]["text"] = "a glass apple on a wooden table, studio light, high detail"
    info = PngInfo()
    info.add_text("prompt", json.dumps(graph))
    return info


def report(name: str, image: Image.Image, reps: int, settings: Settings) -> None:
    rows = []
    info = {"seed": 1, "width": image.width, "height": image.height, "timings_ms": {}, "versions": {}}
    for level in range(10):
        png = encode(image, level)
        encode_time = timed(lambda level=level: encode(image, level), reps).median  # type: ignore[misc]
        check = timed(lambda png=png: check_rgba(png, max_uniform=1.0), reps).median  # type: ignore[misc]
        output = success_output(Result(png, "alpha_x.png", info), settings, "bench")
        total = output_size(output)
        fits = ", ".join(f"{route} {'fits' if total <= limit else 'OVER'}" for route, limit in LIMITS.items())
        mark = "  <- SaveImage" if level == SAVEIMAGE_LEVEL else ""
        rows.append(
            (
                f"level {level}",
                f"encode {encode_time * 1000:7.1f} ms  {len(png) / 1e6:6.3f} MB  "
                f"decode+check {check * 1000:5.1f} ms  response {total / 1e6:6.3f} MB ({fits}){mark}",
            )
        )
    png = encode(image, SAVEIMAGE_LEVEL)
    b64 = timed(lambda: base64.b64encode(png), reps).median
    build = timed(lambda: success_output(Result(png, "alpha_x.png", info), settings, "bench"), reps).median
    rows.append(("base64 of the level-4 PNG", f"{b64 * 1000:.1f} ms"))
    rows.append(("success_output (base64 + size check)", f"{build * 1000:.1f} ms"))
    tagged = encode(image, SAVEIMAGE_LEVEL, saveimage_metadata())
    tag_time = timed(lambda: encode(image, SAVEIMAGE_LEVEL, saveimage_metadata()), reps).median
    rows.append(
        (
            "metadata on (SaveImage's default)",
            f"+{len(tagged) - len(png)} bytes per PNG, "
            f"+{2 * 4 * -(-(len(tagged) - len(png)) // 3)} bytes per response, "
            f"encode {tag_time * 1000:.1f} ms",
        )
    )
    print_table(f"output cost, {name}, {image.width}x{image.height} RGBA, median of {reps}", rows)


def image_options(doc: str, reps: int) -> argparse.ArgumentParser:
    """The options the image benchmarks share: repetitions, the synthetic images' side, PNGs to add."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=reps, help=f"timed repetitions per figure (default {reps})")
    parser.add_argument("--size", type=int, default=SIZE, help="side of the synthetic images (default 1024)")
    parser.add_argument("--png", type=Path, action="append", default=[], help="also measure this RGBA PNG")
    return parser


def arguments(doc: str, argv: list[str] | None, reps: int) -> argparse.Namespace:
    return image_options(doc, reps).parse_args(argv)


def given_pngs(paths: list[Path]) -> dict[str, Image.Image]:
    """The PNGs given with --png, as RGBA, by file name."""
    images = {}
    for path in paths:
        with Image.open(path) as opened:
            images[path.name] = opened.convert("RGBA")
    return images


def bench_output_settings() -> Settings:
    # The largest output the handler allows, so that every image is measured; the verdict is against LIMITS.
    return Settings.from_env().replace(max_output_bytes=20_000_000)


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__ or "", argv, reps=5)
    settings = bench_output_settings()
    images = {"smooth": smooth_image(args.size), "noise": noise_image(args.size), **given_pngs(args.png)}
    for name, image in images.items():
        report(name, image, args.reps, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
