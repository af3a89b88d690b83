"""bootstrap.sh as the container runs it: ComfyUI owned, RunPod's local API served, clean exits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from handler.settings import REPO, Settings
from tests.helpers import assert_success_contract, child_env, free_port, post_json, wait_http

pytestmark = pytest.mark.comfyui


def start(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(["./bootstrap.sh", *args], cwd=REPO, env=child_env(settings), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


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
    assert "job accepted" in text and "job done in" in text
    # At the default log levels neither the prompt nor the image reaches the logs.
    assert "a lantern" not in text and "iVBOR" not in text


@pytest.mark.parametrize(("changes", "message"), [
    ({"comfyui_args": ("--no-such-flag",)}, "ComfyUI exited with code 2 before it was ready"),
    ({"comfyui_args": ("--disable-all-custom-nodes",), "ready_timeout_s": 20.0},
     "not ready within 20 s: ComfyUI answers but has no LayeredDiffusionApply node"),
    # Not in test mode: there bootstrap.sh would first lay out ComfyUI (scripts/setup.sh).
    ({"comfyui_dir": Path("/nonexistent/ComfyUI"), "test_models": False}, "no ComfyUI at /nonexistent/ComfyUI"),
])
def test_exits_nonzero_when_comfyui_cannot_start(test_settings: Settings, tmp_path: Path,
                                                 changes: dict[str, object], message: str) -> None:
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
    proc = start(settings, tmp_path / "bootstrap.log", "--rp_serve_api", "--rp_api_host", "127.0.0.1",
                 "--rp_api_port", str(api))
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
