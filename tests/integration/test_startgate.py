"""The RunPod worker is started early, while ComfyUI boots and warms up, and still takes no job before the warm-up
is done; a start that fails leaves no worker behind. The real ./bootstrap.sh in the SDK's production loop against
the loopback job-API emulator (tests/runpod_emulator.py), with the SDK's fitness checks off (SAFE_ENV)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import child_env, free_port
from tests.runpod_emulator import SAFE_ENV, Emulator, production_env

pytestmark = pytest.mark.comfyui
WORKER = "handler.doors.runpod"


@contextlib.contextmanager
def bootstrap(settings: Settings, emulator: Emulator, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = production_env({**child_env(settings), "CUDA_VISIBLE_DEVICES": ""}, emulator)
    assert all(env[key] == value for key, value in SAFE_ENV.items())
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["./bootstrap.sh"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def early_worker(proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> psutil.Process:
    """The worker process, found while the start is still going on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if WORKER in child.cmdline():
                    return child
        time.sleep(0.05)
    raise AssertionError(f"no worker process within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_an_early_worker_takes_no_job_before_the_warm_up_is_done(test_settings: Settings, tmp_path: Path) -> None:
    """A job waits in the queue from before the start; the worker, loaded long before the warm-up ends (8 steps
    here), must not ask for it until the warm-up is done, then runs it."""
    settings = test_settings.replace(
        comfyui_port=free_port(), output_dir=tmp_path / "output", test_size=64, test_steps=8
    )
    log = tmp_path / "bootstrap.log"
    emulator = Emulator(hold_s=1.0)
    emulator.submit({"prompt": "an early lantern", "seed": 5}, "early")
    with emulator, bootstrap(settings, emulator, log) as proc:
        worker = early_worker(proc, log)
        assert "warm-up done in" not in log.read_text(), "found while the start is still going on"
        deadline = time.monotonic() + 300
        while not emulator.of("take"):
            # What the worker asked for first, then the log: a job-take seen here was made before this read.
            taken, text = emulator.of("take"), log.read_text()
            assert not taken or "warm-up done in" in text, f"a job-take before the warm-up ended:\n{text[-3000:]}"
            assert proc.poll() is None and time.monotonic() < deadline, text[-3000:]
            time.sleep(0.02)
        text = log.read_text()
        assert "warm-up done in" in text, f"a job-take before the warm-up ended:\n{text[-3000:]}"
        body = emulator.wait_result("early", 300)
        assert body["output"]["status"] == "success", body
        assert worker.is_running(), "the worker loaded early is the one that serves"
    text = log.read_text()
    assert text.index("RunPod worker loaded in") < text.index("ComfyUI ready on port"), "loaded during the boot"
    assert text.index("warm-up done in") < text.index("RunPod worker starting")


def test_a_failed_start_leaves_no_worker_and_takes_no_job(test_settings: Settings, tmp_path: Path) -> None:
    """The warm-up fails (a 1 ms deadline): the supervisor reports it as before, and the worker it started early
    is stopped by it, without ever asking for the job that waits."""
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path / "output", warmup_timeout_s=0.001)
    log = tmp_path / "bootstrap.log"
    emulator = Emulator(hold_s=1.0)
    emulator.submit({"prompt": "a lantern", "seed": 5}, "never")
    with emulator, bootstrap(settings, emulator, log) as proc:
        worker = early_worker(proc, log)
        assert proc.wait(180) == 1
        # Stopped by the supervisor before it exited, not left to the kernel's parent-death signal or its deadline.
        _, alive = psutil.wait_procs([worker], timeout=5)
        assert alive == [], f"worker left behind: {alive}"
    text = log.read_text()
    assert "cannot start: timeout: " in text and "RunPod worker starting" not in text
    assert emulator.of("take") == [] and emulator.of("done") == []
