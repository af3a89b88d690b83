"""The layer modes' job time next to a text job's, on one ComfyUI: each mode's first job (its files' first
load), then rounds of text -> foreground -> background jobs, so that every job switches the UNet's patches as
alternating clients would. It prints medians, each mode's ratio to text, and the upload's share
(``info.timings_ms.upload``; the decode and fit before it are bench/layer_input_cost.py's).

Run through bench/gpu.sh on a lent GPU (production mode: full-size random models, 1024x1024, 20 steps); without
ALPHA_MODELS_DIR it runs in test mode: ``--device cpu --size 256 --steps 2`` is the CPU run.

    python -m bench.layer_run [--device cuda] [--rounds 3] [--log comfyui.log]
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path
from typing import Any

from bench.harness import Summary, bench_settings, describe, print_table, run_arguments, running_comfyui
from bench.layer_input_cost import photo
from bench.output_cost import SAVEIMAGE_LEVEL, encode, smooth_image
from handler import logs
from handler.generate import Generator
from handler.request import Request

MODES = ("text", "foreground", "background")
PROMPT = "a cat sitting on a chair"


def inputs(side: int) -> dict[str, dict[str, Any]]:
    """Each mode's job input but the seed: a photo-like background, and a cut-out foreground."""
    background = base64.b64encode(encode(photo(side, side), SAVEIMAGE_LEVEL)).decode()
    foreground = base64.b64encode(encode(smooth_image(side), SAVEIMAGE_LEVEL)).decode()
    return {
        "text": {"prompt": PROMPT},
        "foreground": {"prompt": PROMPT, "mode": "foreground", "background": background},
        "background": {"prompt": PROMPT, "mode": "background", "foreground": foreground},
    }


def timed_job(generator: Generator, job: dict[str, Any], seed: int) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    result = generator.generate(Request.parse({**job, "seed": seed}))
    return time.monotonic() - started, result.info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_arguments(parser, device="cuda")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of text, foreground, background jobs")
    parser.add_argument("--log", type=Path, default=Path("comfyui-layers.log"))
    args = parser.parse_args(argv)
    settings = bench_settings(args)
    logs.configure("WARNING")
    jobs = inputs(1024)
    walls: dict[str, list[float]] = {mode: [] for mode in MODES}
    execs: dict[str, list[float]] = {mode: [] for mode in MODES}
    uploads: list[float] = []
    rows: list[tuple[str, str]] = []
    with running_comfyui(settings, args.log):
        generator = Generator(settings)
        for mode in MODES:
            wall, info = timed_job(generator, jobs[mode], seed=1)
            rows.append((f"{mode}: first job", f"{wall:.2f} s, execution {info['timings_ms']['comfyui_execution']} ms"))
        for round_ in range(args.rounds):
            for mode in MODES:
                wall, info = timed_job(generator, jobs[mode], seed=10 + round_)
                walls[mode].append(wall)
                execs[mode].append(info["timings_ms"]["comfyui_execution"] / 1000)
                if "upload" in info["timings_ms"]:
                    uploads.append(info["timings_ms"]["upload"] / 1000)
    text = Summary.of(walls["text"]).median
    for mode in MODES:
        rows.append((f"{mode}: warm job wall", Summary.of(walls[mode]).s()))
        rows.append((f"{mode}: ComfyUI execution", Summary.of(execs[mode]).s()))
        if mode != "text":
            rows.append((f"{mode}: median wall / text's", f"{Summary.of(walls[mode]).median / text:.2f}"))
    if uploads:
        rows.append(("upload to ComfyUI (layer jobs)", Summary.of(uploads).ms()))
    log = args.log.read_text(errors="replace")
    for needle in ("WEIGHT NOT MERGED", "patch type not recognized", "lora key not loaded"):
        rows.append((f"log: {needle!r}", str(log.count(needle))))
    print_table(f"layer modes against text, {describe(settings)}, {args.rounds} rounds", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
