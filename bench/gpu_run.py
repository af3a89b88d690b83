"""The production workflow on a GPU with the test models: cold and warm timings, per-node times, peak VRAM,
and proof that the LayerDiffuse patches apply on CUDA (an ablation, and ComfyUI's log).

Run through bench/gpu.sh on a lent GPU, in production mode (ALPHA_MODELS_DIR: full-size random SDXL and
LayerDiffuse files; the workflow's 1024x1024 and 20 steps). Without ALPHA_MODELS_DIR it runs in test mode:
``--device cpu --size 256 --steps 2 --jobs 2`` is the CPU dry run. ``--comfyui-args "--highvram" --short``
measures a tuning variant (cold job, warm jobs, VRAM only).

    python -m bench.gpu_run [--device cuda] [--jobs 10] [--save-png FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from bench.direct_client import DirectClient
from bench.harness import (
    Summary,
    bench_settings,
    describe,
    print_table,
    run_arguments,
    run_shape,
    running_comfyui,
)
from handler import logs
from handler.generate import Generator
from handler.png import check_rgba
from handler.request import Request
from handler.settings import Settings
from handler.workflow.graph import Workflow


class VramSampler(threading.Thread):
    """Peak GPU memory in use, sampled with nvidia-smi (covers the ComfyUI process)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=True,
                ).stdout
                self.peak_mib = max(self.peak_mib, int(out.split()[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"), dtype=np.int16)


def node_times(settings: Settings, workflow: Workflow, sub_batch_size: int, jobs: int) -> dict[str, list[float]]:
    """Per node class, its seconds in each of `jobs` runs through the direct client (which sees every event)."""
    width, height, steps = run_shape(settings, workflow)
    times: dict[str, list[float]] = defaultdict(list)
    decoder = next(
        node for node, spec in workflow.graph.items() if spec["class_type"].startswith("LayeredDiffusionDecode")
    )
    with DirectClient(settings.comfyui_url) as client:
        for i in range(jobs):
            graph = workflow.apply(
                prompt="a glass apple",
                negative_prompt=None,
                seed=500 + i,
                width=width,
                height=height,
                filename_prefix=f"nodes_{i}",
                steps=steps,
            )
            graph[decoder]["inputs"]["sub_batch_size"] = sub_batch_size
            run = client.run(graph)
            for node, seconds in run.node_s.items():
                times[graph[node]["class_type"]].append(seconds)
            times["(binary frames: previews)"].append(run.binary_frames)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_arguments(parser, device="cuda")
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--log", type=Path, default=Path("comfyui.log"))
    parser.add_argument("--comfyui-args", default="", help="extra ComfyUI flags: a tuning variant")
    parser.add_argument("--short", action="store_true", help="timings and VRAM only: no per-node, no ablation")
    parser.add_argument("--node-jobs", type=int, default=3, help="jobs per sub_batch_size for per-node times")
    parser.add_argument("--save-png", type=Path, help="write one full-size result here (for bench.output_cost)")
    args = parser.parse_args(argv)
    settings = bench_settings(args, comfyui_args=tuple(shlex.split(args.comfyui_args)))
    logs.configure("WARNING")
    vram = VramSampler()
    if args.device == "cuda":
        vram.start()
    rows: list[tuple[str, str]] = []
    started = time.monotonic()
    try:
        with running_comfyui(settings, args.log):
            rows.append(("ComfyUI start to ready", f"{time.monotonic() - started:.1f} s"))
            generator = Generator(settings)
            t0 = time.monotonic()
            cold = generator.generate(Request(prompt="a glass apple", seed=1))
            rows.append(
                (
                    "cold first job (model load included)",
                    f"{time.monotonic() - t0:.2f} s, execution {cold.info['timings_ms']['comfyui_execution']} ms",
                )
            )
            if args.save_png:
                args.save_png.write_bytes(cold.image)
            walls, execs = [], []
            for i in range(args.jobs):
                t0 = time.monotonic()
                result = generator.generate(Request(prompt=f"a glass apple, take {i}", seed=100 + i))
                walls.append(time.monotonic() - t0)
                execs.append(result.info["timings_ms"]["comfyui_execution"] / 1000)
            if walls:
                rows.append((f"warm job wall, {args.jobs} jobs", Summary.of(walls).s()))
                rows.append(("warm ComfyUI execution", Summary.of(execs).s()))
                rows.append(
                    (
                        "handler overhead (wall - execution)",
                        Summary.of([w - e for w, e in zip(walls, execs, strict=True)]).ms(),
                    )
                )
            if not args.short:
                rows += detail_rows(settings, generator, args.node_jobs)
    finally:
        vram.stop.set()
    text = args.log.read_text(errors="replace")
    rows.append(("log: 'patch type not recognized'", str(text.count("patch type not recognized"))))
    rows.append(("log: 'converted 560 legacy lora patches'", str(text.count("converted 560 legacy lora patches"))))
    rows.append(("log: device mismatch errors", str(text.count("Expected all tensors to be on the same device"))))
    if args.device == "cuda":
        rows.append(("peak GPU memory in use (nvidia-smi)", f"{vram.peak_mib} MiB"))
    extra = f", ComfyUI args {args.comfyui_args!r}" if args.comfyui_args else ""
    print_table(f"production workflow, {describe(settings)}{extra}", rows)
    return 0


def detail_rows(settings: Settings, generator: Generator, node_jobs: int) -> list[tuple[str, str]]:
    """Per-node times (sub_batch_size 16, the workflow's, and 1), the ablation, the result and versions."""
    rows: list[tuple[str, str]] = []
    for sub_batch in (16, 1):
        times = node_times(settings, generator.workflow, sub_batch, node_jobs)
        for name, values in times.items():
            if name.startswith("(") and sub_batch == 16:
                rows.append((f"ws {name}", f"{int(sum(values))} in {node_jobs} jobs"))
            elif not name.startswith("("):
                rows.append((f"node {name} (sub_batch_size {sub_batch})", Summary.of(values).ms()))
    # The ablation compares images; only a constant alpha fails it (weight 0 may legitimately be near uniform).
    ablation = settings.replace(max_uniform_alpha=1.0)
    on, off = (
        Generator(
            ablation,
            workflow=generator.workflow.with_input("alpha:layer_diffuse", "weight", w),
            client=generator.client,
        ).generate(Request(prompt="a vase", seed=7))
        for w in (1.0, 0.0)
    )
    a, b = pixels(on.image), pixels(off.image)
    rows.append(
        (
            "ablation weight 1 vs 0, mean |diff| RGB / alpha",
            f"{np.abs(a[..., :3] - b[..., :3]).mean():.2f} / {np.abs(a[..., 3] - b[..., 3]).mean():.2f}",
        )
    )
    stats = check_rgba(on.image, max_uniform=settings.max_uniform_alpha)
    rows.append(
        (
            "result",
            f"{stats.width}x{stats.height} RGBA, alpha mean {stats.alpha_mean}, "
            f"{stats.transparent * 100:.1f}% transparent, {len(on.image)} bytes",
        )
    )
    rows.append(("versions", json.dumps(on.info["versions"])))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
