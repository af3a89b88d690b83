"""The GPU preflight, run as the supervisor runs it (a subprocess). With no GPU visible it must fail
clearly; CUDA_VISIBLE_DEVICES="" hides any GPU, so this holds on a GPU machine too."""

from __future__ import annotations

import os
import subprocess
import sys

from handler.paths import REPO


def test_fails_clearly_without_a_usable_gpu() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "handler.gpucheck"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("GPU preflight failed: CUDA is not usable")
    assert "ALPHA_DEVICE=cpu" in result.stderr and "ALPHA_GPU_PREFLIGHT=0" in result.stderr
    assert result.stdout == ""
