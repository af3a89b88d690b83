"""bootstrap.sh as the container runs it: ComfyUI owned, RunPod's local API served, clean exits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import (
    assert_error,
    assert_success_contract,
    child_env,
    decode_png,
    free_port,
    http,
    post_json,
    wait_http,
)

pytestmark = pytest.mark.comfyui


def start(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    # No GPU is visible, even on a GPU machine: the GPU preflight case must fail everywhere.
    env = {**child_env(settings), "CUDA_VISIBLE_DEVICES": ""}
    with log.open("wb") as out:
        return subprocess.Popen(
            ["./bootstrap.sh", *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Whatever a failed assertion left running: bootstrap and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def test_serves_runsync_then_stops_cleanly_on_sigterm(test_settings: Settings, tmp_path: Path) -> None:
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path / "output")
    api = free_port()
    log = tmp_path / "bootstrap.log"
    proc = start(settings, log, "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(api))
    try:
        wait_http(f"http://127.0.0.1:{api}/docs", 300)
        status, body = post_json(f"http://127.0.0.1:{api}/runsync", {"input": {"prompt": "a lantern"}}, 300)
        assert status == 200 and body["status"] == "COMPLETED", body
        assert_success_contract(body["output"])
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("main.py" in " ".join(c.cmdline()) for c in children), "ComfyUI runs under bootstrap"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 30
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {alive}"
    finally:
        stop_group(proc)
    text = log.read_text()
    assert "ComfyUI ready on port" in text and "SIGTERM received" in text
    # The warm-up ran before the worker started (the worker's first log line comes after it).
    assert text.index("warm-up done in") < text.index("RunPod worker starting")
    assert "job accepted" in text and "job done in" in text
    # Each layer mode's state is in the start-up log (the test models have every mode's files).
    assert "layer mode foreground: ok" in text and "layer mode background: ok" in text
    # At the default log levels neither the prompt nor the image reaches the logs.
    assert "a lantern" not in text and "iVBOR" not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"comfyui_args": ("--no-such-flag",)}, "ComfyUI exited with code 2 before it was ready"),
        (
            {"comfyui_args": ("--disable-all-custom-nodes",), "ready_timeout_s": 20.0},
            "not ready within 20 s: ComfyUI answers but has no LayeredDiffusionApply node",
        ),
        # Not in test mode: there bootstrap.sh would first lay out ComfyUI (scripts/setup.sh).
        (
            {"comfyui_dir": Path("/nonexistent/ComfyUI"), "test_models": False, "gpu_preflight": False},
            "no ComfyUI at /nonexistent/ComfyUI",
        ),
        ({"device": "cuda"}, "cannot start: gpu_unavailable: GPU preflight failed: CUDA is not usable"),
    ],
)
def test_exits_nonzero_when_comfyui_cannot_start(
    test_settings: Settings, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path / "output", **changes)
    log = tmp_path / "bootstrap.log"
    started = time.monotonic()
    proc = start(settings, log, "--rp_serve_api")
    try:
        assert proc.wait(120) == 1
    finally:
        stop_group(proc)
    assert time.monotonic() - started < 90
    assert message in log.read_text()


def test_nothing_outlives_a_killed_supervisor(test_settings: Settings, tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the kernel (PDEATHSIG) must stop ComfyUI and the worker."""
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path / "output")
    api = free_port()
    proc = start(
        settings, tmp_path / "bootstrap.log", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(api)
    )
    try:
        wait_http(f"http://127.0.0.1:{api}/docs", 300)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2, "ComfyUI and the worker"
        proc.send_signal(signal.SIGKILL)  # bootstrap.sh exec'd the supervisor: this is its pid
        proc.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {[c.cmdline() for c in alive]}"
    finally:
        stop_group(proc)


def test_serve_runs_the_alpha_api_then_stops_cleanly(test_settings: Settings, tmp_path: Path) -> None:
    """`./bootstrap.sh serve`: ComfyUI plus the alpha API. Bound beyond loopback here, so the log must warn."""
    token = "bootstrap-token-0123456789"
    settings = test_settings.replace(
        comfyui_port=free_port(),
        output_dir=tmp_path / "output",
        serve_port=free_port(),
        serve_host="0.0.0.0",
        serve_token=token,
        test_size=64,
    )
    base = f"http://127.0.0.1:{settings.serve_port}/alpha/v1"
    auth = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "bootstrap.log"
    proc = start(settings, log, "serve")
    try:
        wait_http(f"{base}/openapi.json", 300)
        assert http("GET", f"{base}/health", headers=auth).json()["status"] == "ready"
        reply = http(
            "POST",
            f"{base}/txt2img",
            json.dumps({"prompt": "a lantern"}).encode(),
            {"Content-Type": "application/json", **auth},
            timeout=300,
        )
        assert reply.status == 200, reply.body[:300]
        served = http("GET", f"http://127.0.0.1:{settings.serve_port}{reply.json()['url']}", headers=auth)
        assert served.status == 200 and decode_png(served.body).mode == "RGBA"
        assert served.body == (settings.effective_serve_dir / reply.json()["filename"]).read_bytes()
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {alive}"
    finally:
        stop_group(proc)
    text = log.read_text()
    assert "the alpha API binds 0.0.0.0, so other hosts can reach it" in text
    assert "job accepted" in text and "a lantern" not in text and "iVBOR" not in text and token not in text


def test_serve_takes_no_arguments(test_settings: Settings, tmp_path: Path) -> None:
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path / "output")
    log = tmp_path / "bootstrap.log"
    proc = start(settings, log, "serve", "--port", "1")
    try:
        assert proc.wait(60) != 0
    finally:
        stop_group(proc)
    assert "'serve' takes no arguments" in log.read_text()
    assert "starting ComfyUI" not in log.read_text(), "refused before starting anything"


def test_refuses_to_start_with_a_workflow_this_comfyui_cannot_run(test_settings: Settings, tmp_path: Path) -> None:
    graph = json.loads(test_settings.workflow.read_text())
    loader = next(i for i, n in graph.items() if n["class_type"] == "CheckpointLoaderSimple")
    graph[loader]["inputs"]["ckpt_name"] = "juggernautXL_v9.safetensors"
    variant = tmp_path / "variant.json"
    variant.write_text(json.dumps(graph))
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path / "output", workflow=variant)
    log = tmp_path / "bootstrap.log"
    proc = start(settings, log, "--rp_serve_api")
    try:
        assert proc.wait(120) == 1
    finally:
        stop_group(proc)
    text = log.read_text()
    assert (
        "cannot start: invalid_workflow: the workflow cannot run on this ComfyUI: variant: node "
        f"{loader} (CheckpointLoaderSimple): ckpt_name 'juggernautXL_v9.safetensors' is not available"
    ) in text
    assert "warm-up" not in text and "RunPod worker starting" not in text


# About 10 s of sampling at 64 px on the CI machine: room to kill ComfyUI mid-job.
DEATH_STEPS = 24


def kill_comfyui_mid_job(proc: subprocess.Popen[bytes], settings: Settings, send: Callable[[], Any]) -> Any:
    """Send a job on a thread, SIGKILL ComfyUI once it samples, and return what the job's caller got (or the
    exception that ended its request)."""
    answer: list[Any] = []

    def call() -> None:
        try:
            answer.append(send())
        except Exception as exc:  # a cut connection is the defect under test: report it, do not hang
            answer.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    queue_url = f"{settings.comfyui_url}/queue"
    deadline = time.monotonic() + 120
    while not json.loads(http("GET", queue_url).body)["queue_running"]:
        assert time.monotonic() < deadline and caller.is_alive(), "the job never reached ComfyUI"
        time.sleep(0.1)
    [comfy] = [c for c in psutil.Process(proc.pid).children(recursive=True) if "main.py" in " ".join(c.cmdline())]
    comfy.kill()
    caller.join(60)
    assert answer, "the caller got no answer within 60 s of ComfyUI's death"
    return answer[0]


def test_comfyui_death_mid_runsync_answers_comfyui_unavailable(test_settings: Settings, tmp_path: Path) -> None:
    """RunPod's local API: the caller of a /runsync whose ComfyUI died gets comfyui_unavailable, then the worker
    stops (code 1: the container restarts)."""
    settings = test_settings.replace(
        comfyui_port=free_port(), output_dir=tmp_path / "output", test_size=64, test_steps=DEATH_STEPS, warmup=False
    )
    api = free_port()
    proc = start(settings, tmp_path / "bootstrap.log", "--rp_serve_api", "--rp_api_port", str(api))
    try:
        wait_http(f"http://127.0.0.1:{api}/docs", 300)
        got = kill_comfyui_mid_job(
            proc, settings, lambda: post_json(f"http://127.0.0.1:{api}/runsync", {"input": {"prompt": "a lamp"}}, 120)
        )
        assert not isinstance(got, Exception), f"the /runsync caller got {got!r}, not an answer"
        status, body = got
        assert status == 200
        assert_error(body, "comfyui_unavailable", None)
        assert proc.wait(60) == 1
    finally:
        stop_group(proc)


def test_comfyui_death_mid_alpha_job_answers_comfyui_unavailable(test_settings: Settings, tmp_path: Path) -> None:
    """The alpha API: the caller gets the contract's 503 comfyui_unavailable, then the supervisor stops."""
    settings = test_settings.replace(
        comfyui_port=free_port(),
        output_dir=tmp_path / "output",
        serve_port=free_port(),
        test_size=64,
        test_steps=DEATH_STEPS,
        warmup=False,
    )
    base = f"http://127.0.0.1:{settings.serve_port}/alpha/v1"
    proc = start(settings, tmp_path / "bootstrap.log", "serve")
    try:
        wait_http(f"{base}/openapi.json", 300)
        body = json.dumps({"prompt": "a lamp"}).encode()
        got = kill_comfyui_mid_job(
            proc, settings, lambda: http("POST", f"{base}/txt2img", body, {"Content-Type": "application/json"}, 120)
        )
        assert not isinstance(got, Exception), f"the alpha API caller got {got!r}, not an answer"
        assert got.status == 503, got.body[:300]
        assert_error(got.json(), "comfyui_unavailable", None)
        assert proc.wait(60) == 1
    finally:
        stop_group(proc)
