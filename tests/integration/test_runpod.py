"""The RunPod door end to end: RunPod's own tooling, the real ComfyUI, the test models."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest
from runpod.serverless.modules.rp_job import run_job

from handler.doors.runpod.worker import make_handler
from handler.generate import Generator
from handler.paths import REPO
from tests.helpers import RunningComfy, assert_error, assert_success_contract, child_env, post_json, rgba

pytestmark = pytest.mark.comfyui
WORKFLOW_SHA = hashlib.sha256((REPO / "workflows" / "alpha_txt2img.json").read_bytes()).hexdigest()


def run(comfy: RunningComfy, job_input: Any) -> dict[str, Any]:
    handler = make_handler(Generator(comfy.settings))
    result: dict[str, Any] = asyncio.run(run_job(handler, {"id": "test-job", "input": job_input}))
    return result


def test_success_contract(comfy: RunningComfy) -> None:
    result = run(comfy, {"prompt": "a glass apple", "seed": 1234})
    assert set(result) == {"output"}, result.get("error")
    png, info = assert_success_contract(result["output"])
    assert info["seed"] == 1234 and (info["width"], info["height"]) == (1024, 1024)
    assert info["workflow"] == {"name": "alpha_txt2img", "sha256": WORKFLOW_SHA}
    assert isinstance(info["prompt_id"], str) and info["prompt_id"]
    assert set(info["timings_ms"]) == {"comfyui_execution", "comfyui_wait", "fetch", "asset", "total"}
    assert info["format"] == "png" and info["mime_type"] == "image/png" and "crop" not in info
    assert info["attempts"] == [{"seed": 1234, "rejected": None}]
    assert all(isinstance(v, int) and v >= 0 for v in info["timings_ms"].values())
    assert info["versions"]["comfyui"] == "0.3.75"
    assert info["versions"]["custom_nodes"] == {"ComfyUI-layerdiffuse": "fffa28a7b1c10fc10c012b59b83f3e0a729e00ba"}
    assert info["test_mode"] == {"width": 256, "height": 256, "steps": 2}
    assert rgba(png).shape == (256, 256, 4)
    assert 0 < info["alpha"]["transparent"] < 1 and info["alpha"]["alpha_min"] < info["alpha"]["alpha_max"]
    # The image travelled in the response; ComfyUI's copy (<stem>_00001_.png) is gone.
    stem = result["output"]["filename"].removesuffix(".png")
    assert comfy.settings.output_dir is not None and comfy.settings.output_dir.is_dir()
    assert list(comfy.settings.output_dir.rglob(f"{stem}_*")) == []


def test_random_seed_is_reported_and_reproduces(comfy: RunningComfy) -> None:
    first = run(comfy, {"prompt": "a paper crane", "width": 1216, "height": 832})["output"]
    png, info = assert_success_contract(first)
    assert 0 <= info["seed"] < 2**53 and (info["width"], info["height"]) == (1216, 832)
    assert info["test_mode"]["width"] > info["test_mode"]["height"], "test mode keeps the aspect"
    again = run(comfy, {"prompt": "a paper crane", "width": 1216, "height": 832, "seed": info["seed"]})["output"]
    assert (rgba(png) == rgba(assert_success_contract(again)[0])).all()


def test_error_contract_and_nothing_submitted(comfy: RunningComfy) -> None:
    before = comfy.history_size()
    result = run(comfy, {"prompt": "   "})
    assert_error(result, "invalid_input", "prompt", words="'prompt' must not be empty")
    assert result["error"] == "invalid_input: 'prompt' must not be empty"
    assert result["output"] == {
        "status": "error",
        "code": "invalid_input",
        "message": "'prompt' must not be empty",
        "field": "prompt",
    }
    assert "stopPod" not in result
    assert comfy.history_size() == before


def test_runsync_success(serve_api: str) -> None:
    status, body = post_json(f"{serve_api}/runsync", {"input": {"prompt": "a red balloon", "seed": 5}}, 300)
    assert status == 200 and body["status"] == "COMPLETED", body
    _, info = assert_success_contract(body["output"])
    assert info["seed"] == 5


def test_test_input_flag(comfy: RunningComfy) -> None:
    """`python -m handler --test_input ...` runs one job and exits 0, or 1 when it fails."""

    def run_flag(job_input: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "handler", "--test_input", json.dumps({"input": job_input})],
            cwd=REPO,
            env=child_env(comfy.settings),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    good = run_flag({"prompt": "a teacup", "seed": 3})
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert "completed successfully" in good.stdout
    bad = run_flag({"prompt": "a teacup", "steps": 3})
    assert bad.returncode == 1
    assert "invalid_input: unknown field 'steps'" in bad.stdout + bad.stderr
