"""The benchmark scripts cannot rot: bench/gpu.sh's CPU dry run runs every phase (gpu_run, layer modes, output cost,
asset cost, overhead, a tuning variant, cold start) on the real ComfyUI with the test models at 256 px, 2 steps.

Figures are printed, never asserted against a time: a benchmark is not a timed test. What is asserted is
that each script ran and reported every figure, and what holds regardless of speed: LayerDiffuse changed
the image, no patch was dropped, no device mismatch, no preview frames.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import child_env

pytestmark = pytest.mark.comfyui


def row(text: str, name: str) -> str:
    """The value printed after a row's name (the first row that starts with it)."""
    match = re.search(rf"^{re.escape(name)}\s+(.+)$", text, re.MULTILINE)
    assert match, f"no row {name!r} in:\n{text}"
    return match.group(1)


def test_gpu_script_dry_run(test_settings: Settings, tmp_path: Path) -> None:
    env = {**child_env(test_settings), "OUT": str(tmp_path), "GPU_BUDGET_S": "1800"}
    env.pop("ALPHA_MODELS_DIR", None)
    done = subprocess.run(
        [str(REPO / "bench" / "gpu.sh"), "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = {path.stem: path.read_text() for path in tmp_path.glob("*.txt")}
    assert set(out) >= {
        "gpu_run",
        "layers",
        "output",
        "asset",
        "overhead",
        "variant__disable_smart_memory",
        "coldstart",
    }

    gpu = out["gpu_run"]
    assert "cpu, test models, 256 px, 2 steps" in gpu
    assert re.match(r"[\d.]+ s, execution \d+ ms", row(gpu, "cold first job (model load included)"))
    assert "(n=2)" in row(gpu, "warm job wall, 2 jobs")
    for node in ("KSampler", "VAEDecode", "LayeredDiffusionDecodeRGBA", "SaveImage"):
        assert "median" in row(gpu, f"node {node} (sub_batch_size 16)")
    # Same seeds again: ComfyUI's cache leaves only the decoder (its input changed) and what follows it.
    assert "median" in row(gpu, "node LayeredDiffusionDecodeRGBA (sub_batch_size 1)")
    assert row(gpu, "ws (binary frames: previews)").startswith("0 in ")
    rgb, alpha = map(float, row(gpu, "ablation weight 1 vs 0, mean |diff| RGB / alpha").split(" / "))
    assert rgb > 2 and alpha > 2, "LayerDiffuse must change the image"
    assert row(gpu, "log: 'patch type not recognized'") == "0"
    assert row(gpu, "log: device mismatch errors") == "0"
    assert int(row(gpu, "log: 'converted 560 legacy lora patches'")) >= 1
    assert (tmp_path / "result.png").read_bytes().startswith(b"\x89PNG")

    for mode in ("foreground", "background"):
        assert re.fullmatch(r"[\d.]+", row(out["layers"], f"{mode}: median wall / text's")), out["layers"]
    assert row(out["layers"], "log: 'WEIGHT NOT MERGED'") == "0"
    assert "<- SaveImage" in row(out["output"], "level 4")
    assert "result.png" in out["output"] and "smooth" in out["output"] and "noise" in out["output"]
    for image in ("smooth", "smooth+colour", "noise", "result.png"):
        assert f"asset cost, {image}, " in out["asset"]
    assert "<- handler" in row(out["asset"], "WebP q25 m2") and "crop" in row(out["asset"], "make webp, trim +16")
    assert re.match(r"[\d.]+ x", row(out["overhead"], "ratio runsync / direct (median overhead)"))
    assert re.match(r"[\d.]+ x", row(out["overhead"], "ratio production / direct (median overhead)"))
    assert "ComfyUI args '--disable-smart-memory'" in out["variant__disable_smart_memory"]
    on_off = row(out["coldstart"], "start -> first job done")
    assert re.match(r"warm-up on\s+[\d.]+ s\s+off\s+[\d.]+ s", on_off)
    assert "total" in done.stdout and os.path.isdir(tmp_path / "coldstart")
