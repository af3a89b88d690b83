"""The production workflow on a GPU with the test models: timings, peak VRAM, and proof that the
LayerDiffuse patches apply on CUDA (an ablation, and ComfyUI's log).

Run through bench/gpu.sh on a lent GPU; `--device cpu --size 256 --steps 2 --jobs 2` is the CPU dry run.
Prints one summary table at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from handler import logs
from handler.comfy_process import ComfyProcess
from handler.generate import Generator
from handler.png import check_rgba
from handler.request import Request
from handler.settings import Settings
from handler.workflow import Workflow


class VramSampler(threading.Thread):
    """Peak GPU memory in use, sampled with nvidia-smi (covers the ComfyUI process)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5, check=True).stdout
                self.peak_mib = max(self.peak_mib, int(out.split()[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"), dtype=np.int16)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--log", type=Path, default=Path("comfyui.log"))
    args = parser.parse_args()
    settings = Settings.from_env().replace(test_models=True, device=args.device, test_size=args.size,
                                           test_steps=args.steps)
    logs.configure("WARNING")
    vram = VramSampler()
    if args.device == "cuda":
        vram.start()
    rows: list[tuple[str, str]] = []
    process = ComfyProcess(settings, log_path=args.log)
    started = time.monotonic()
    process.start()
    try:
        process.wait_ready()
        rows.append(("ComfyUI start to ready", f"{time.monotonic() - started:.1f} s"))
        generator = Generator(settings)
        t0 = time.monotonic()
        cold = generator.generate(Request(prompt="a glass apple", seed=1))
        rows.append(("cold first job (model load included)", f"{time.monotonic() - t0:.2f} s, execution "
                     f"{cold.info['timings_ms']['comfyui_execution']} ms"))
        walls, execs = [], []
        for i in range(args.jobs):
            t0 = time.monotonic()
            result = generator.generate(Request(prompt=f"a glass apple, take {i}", seed=100 + i))
            walls.append(time.monotonic() - t0)
            execs.append(result.info["timings_ms"]["comfyui_execution"] / 1000)
        if walls:
            rows.append((f"warm job wall, {args.jobs} jobs", f"p50 {pct(walls, 50):.3f} s, p90 {pct(walls, 90):.3f} s, "
                         f"min {min(walls):.3f}, max {max(walls):.3f}"))
            rows.append(("warm ComfyUI execution", f"p50 {pct(execs, 50):.3f} s, p90 {pct(execs, 90):.3f} s"))
            rows.append(("handler overhead (wall - execution), median",
                         f"{statistics.median(w - e for w, e in zip(walls, execs, strict=True)) * 1000:.0f} ms"))
        production = Workflow.load(settings.workflow)
        # The ablation compares images; only a constant alpha fails it (weight 0 may legitimately be near uniform).
        ablation = settings.replace(max_uniform_alpha=1.0)
        on, off = (Generator(ablation, workflow=production.with_input("alpha:layer_diffuse", "weight", w))
                   .generate(Request(prompt="a vase", seed=7)) for w in (1.0, 0.0))
        a, b = pixels(on.png), pixels(off.png)
        rows.append(("ablation weight 1 vs 0, mean |diff| RGB / alpha",
                     f"{np.abs(a[..., :3] - b[..., :3]).mean():.2f} / {np.abs(a[..., 3] - b[..., 3]).mean():.2f}"))
        stats = check_rgba(on.png, max_uniform=settings.max_uniform_alpha)
        rows.append(("result", f"{stats.width}x{stats.height} RGBA, alpha mean {stats.alpha_mean}, "
                     f"{stats.transparent * 100:.1f}% transparent, {len(on.png)} bytes"))
        rows.append(("versions", json.dumps(on.info["versions"])))
    finally:
        process.stop()
        vram.stop.set()
    text = args.log.read_text(errors="replace")
    rows.append(("log: 'patch type not recognized'", str(text.count("patch type not recognized"))))
    rows.append(("log: 'converted 560 legacy lora patches'", str(text.count("converted 560 legacy lora patches"))))
    rows.append(("log: device mismatch errors", str(text.count("Expected all tensors to be on the same device"))))
    if args.device == "cuda":
        rows.append(("peak GPU memory in use (nvidia-smi)", f"{vram.peak_mib} MiB"))
    print(f"\n== production workflow, test models, {args.device}, {args.size} px, {args.steps} steps ==")
    for name, value in rows:
        print(f"{name:48} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
