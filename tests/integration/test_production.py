"""The path production uses: the real ./bootstrap.sh (test models) running the SDK's production loop against the
loopback RunPod job-API emulator (tests/runpod_emulator.py): job-take, job-done, job-stop, progress, SIGTERM.

Every worker here is started by the ``production`` fixture, which sets RUNPOD_SKIP_AUTO_SYSTEM_CHECKS and
RUNPOD_SKIP_GPU_CHECK (the SDK's fitness checks would otherwise open a connection to a public DNS server) and
refuses to hand the worker any URL that is not loopback. Four workers, each serving a few scenarios in turn."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from handler.comfyui.client import ComfyClient
from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import assert_error, assert_success_contract, child_env, free_port
from tests.runpod_emulator import SAFE_ENV, Emulator, production_env

pytestmark = pytest.mark.comfyui
SIZE = 64  # test mode's longest side: a job is quick
LONG_STEPS = 24  # about 10 s of sampling on the CI machine at 64 px: room to strike mid-sampling


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    settings: Settings
    log_path: Path
    emulator: Emulator

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def comfy(self) -> ComfyClient:
        return ComfyClient(self.settings.comfyui_url)

    def children(self) -> list[psutil.Process]:
        return list(psutil.Process(self.proc.pid).children(recursive=True))

    def wait_polling(self, timeout: float = 300) -> None:
        """Ready: the worker has asked for a job."""
        deadline = time.monotonic() + timeout
        while not self.emulator.of("take"):
            assert self.proc.poll() is None, f"bootstrap exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"no job-take within {timeout:.0f} s:\n{self.log()[-3000:]}"
            time.sleep(0.2)


StartWorker = Callable[..., Worker]


@pytest.fixture
def production(test_settings: Settings, tmp_path: Path) -> Iterator[StartWorker]:
    """Starts ./bootstrap.sh in production mode against an emulator; whatever it left running is killed after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(emulator: Emulator, name: str, **changes: Any) -> Worker:
        settings = test_settings.replace(
            comfyui_port=free_port(), output_dir=tmp_path / f"{name}-output", test_size=SIZE, **changes
        )
        env = production_env({**child_env(settings), "CUDA_VISIBLE_DEVICES": ""}, emulator)
        assert all(env[key] == value for key, value in SAFE_ENV.items())
        log_path = tmp_path / f"{name}.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                ["./bootstrap.sh"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append(proc)
        return Worker(proc, settings, log_path, emulator)

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def timeline(emulator: Emulator, since: float) -> str:
    """What RunPod received and answered, in its order (seconds since ``since``; long-polls when answered): for
    the test's output and the report. Empty polls and pings left out."""
    return "\n".join(
        f"+{a.answered - since:7.2f} s {a.kind:10} {a.job_id or '-':12} {a.status} {summary(a.body)}"
        for a in sorted(emulator.arrivals, key=lambda a: a.answered)
        if a.kind not in ("ping", "stop-poll", "take") or a.body
    )


def summary(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body or "")
    output = body.get("output")
    if isinstance(output, dict) and output.get("status") == "success":
        return "success"
    if "error" in body:
        return f"{body['error'][:90]} stopPod={body.get('stopPod')}"
    return str(output)[:90]


def wait_progress(emulator: Emulator, job_id: str, timeout: float = 120) -> float:
    """Sampling has begun: the job's first progress update arrived."""
    deadline = time.monotonic() + timeout
    while not emulator.of("progress", job_id):
        assert time.monotonic() < deadline, f"no progress for {job_id}"
        time.sleep(0.05)
    return emulator.of("progress", job_id)[0].at


def wait_stop_answer(emulator: Emulator, job_id: str, timeout: float = 10) -> float:
    """When the job-stop long-poll was answered with the job."""
    deadline = time.monotonic() + timeout
    while not (told := [a for a in emulator.of("stop-poll") if a.body == [job_id]]):
        assert time.monotonic() < deadline, "the worker's job-stop poll never got the stop"
        time.sleep(0.02)
    return told[0].answered


def comfy_queue(worker: Worker) -> tuple[list[Any], list[Any]]:
    body = worker.comfy()._json("GET", "/queue")
    return body["queue_running"], body["queue_pending"]


def assert_exits(worker: Worker, code: int, within: float) -> float:
    children = worker.children()
    started = time.monotonic()
    assert worker.proc.wait(within) == code, worker.log()[-3000:]
    took = time.monotonic() - started
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {[c.cmdline() for c in alive]}"
    return took


def assert_no_late_progress(emulator: Emulator, job_ids: list[str]) -> int:
    """No update reached RunPod after the job's result; returns how many updates came in all."""
    updates = 0
    for job_id in job_ids:
        results = [a for a in emulator.of("done", job_id) if a.status == 200]
        progress = emulator.of("progress", job_id)
        updates += len(progress)
        assert len(results) == 1, f"{job_id}: {len(results)} results"
        assert all(p.answered < results[0].answered for p in progress), f"{job_id}: an update after the result"
    return updates


def test_steady_jobs_then_sigterm_mid_job(production: StartWorker) -> None:
    """RunPod's API is down when the worker starts, then up; 20 jobs (a bad input among them, the first
    result's post answered 500 once); then SIGTERM while a job runs: it finishes, then everything exits."""
    emulator = Emulator(hold_s=2.0)
    worker = production(emulator, "steady")
    t0 = time.monotonic()
    deadline = time.monotonic() + 300
    while "RunPod worker starting" not in worker.log():  # the worker polls an API that is not there
        assert worker.proc.poll() is None and time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)
    time.sleep(2.0)
    assert worker.proc.poll() is None, "an unreachable API does not crash the worker"
    # It kept asking the API that was not there, backing off (handler/doors/runpod/jobloop.py: one line for this).
    assert "job-take failed (ClientConnectorError" in worker.log()
    emulator.fail_done = 1
    with emulator:
        worker.wait_polling()
        jobs = [f"steady-{n:02d}" for n in range(20)]
        for n, job_id in enumerate(jobs):
            job_input: Any = {"prompt": f"a lantern {n}", "seed": n} if n != 10 else {"prompt": "", "seed": 1}
            emulator.submit(job_input, job_id)
        for job_id in jobs:
            emulator.wait_result(job_id, 120)
        last = emulator.submit({"prompt": "a last lantern", "seed": 99}, "steady-last")
        wait_progress(emulator, last)
        signalled = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        took = assert_exits(worker, 128 + signal.SIGTERM, 60)
        print(f"\n{timeline(emulator, t0)}\nSIGTERM at +{signalled - t0:.2f} s; exited {took:.2f} s later")
    for job_id in [*jobs, last]:
        body = emulator.results(job_id)[0]
        if job_id == "steady-10":
            assert_error(body, "invalid_input", "prompt")
        else:
            assert set(body) == {"output"}, body.keys()
            assert_success_contract(body["output"])
    assert [a.status for a in emulator.of("done", jobs[0])] == [500, 200], "retried once, accepted once"
    assert emulator.results(last)[0]["output"]["status"] == "success", "the job in flight at SIGTERM finished"
    assert not [a for a in emulator.arrivals if a.kind.startswith("take") and a.at > signalled], "no take after it"
    assert took < 15
    updates = assert_no_late_progress(emulator, [*jobs, last])
    assert updates >= 20, "every job that sampled reported progress"
    text = worker.log()
    assert "[job steady-10] job failed: invalid_input" in text
    assert not re.search(r"\[job steady-10\] (submitted|job accepted)", text), "nothing reached ComfyUI"
    assert "a lantern" not in text and "iVBOR" not in text
    assert emulator.violations == []


def test_stop_mid_sampling_then_sigterm_past_the_drain_bound(production: StartWorker) -> None:
    emulator = Emulator(hold_s=2.0)
    with emulator:
        worker = production(emulator, "stop", test_steps=LONG_STEPS, drain_timeout_s=2.0)
        worker.wait_polling()
        t0 = time.monotonic()
        # Stop: job-stop names the job mid-sampling.
        emulator.submit({"prompt": "a clock", "seed": 1}, "to-stop")
        wait_progress(emulator, "to-stop")
        running, _ = comfy_queue(worker)
        assert running, "sampling"
        emulator.stop("to-stop")
        told = wait_stop_answer(emulator, "to-stop")
        while comfy_queue(worker) != ([], []):
            assert time.monotonic() - told < 3.0, "the prompt is interrupted and dequeued within 3 s"
            time.sleep(0.05)
        idle_after = time.monotonic() - told
        emulator.submit({"prompt": "a clock", "seed": 2}, "after-stop")
        after = emulator.wait_result("after-stop", 180)
        # SIGTERM while a job samples, with a drain bound it cannot meet.
        emulator.submit({"prompt": "a bell", "seed": 3}, "drained")
        wait_progress(emulator, "drained")
        signalled = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        took = assert_exits(worker, 128 + signal.SIGTERM, 60)
        print(
            f"\n{timeline(emulator, t0)}\nComfyUI idle {idle_after:.2f} s after the stop; SIGTERM at "
            f"+{signalled - t0:.2f} s; exited {took:.2f} s later"
        )
    assert emulator.of("done", "to-stop") == [], "nothing claims anything for the stopped job"
    assert_success_contract(after["output"])
    (drained,) = emulator.of("done", "drained")
    assert_error(drained.body, "cancelled", None, words="drain time of 2 s (ALPHA_DRAIN_TIMEOUT_S)")
    assert "dequeued and interrupted" in worker.log()
    assert 2.0 <= drained.at - signalled < 6.0, f"posted {drained.at - signalled:.1f} s after SIGTERM"
    assert took < 12
    assert_no_late_progress(emulator, ["after-stop", "drained"])
    assert emulator.violations == []


def test_comfyui_dying_mid_job_is_reported_and_the_container_exits(production: StartWorker) -> None:
    emulator = Emulator(hold_s=2.0)
    with emulator:
        worker = production(emulator, "death", test_steps=LONG_STEPS)
        worker.wait_polling()
        t0 = time.monotonic()
        emulator.submit({"prompt": "a lamp", "seed": 1}, "orphan")
        wait_progress(emulator, "orphan")
        (comfy,) = [c for c in worker.children() if "main.py" in " ".join(c.cmdline())]
        killed = time.monotonic()
        comfy.kill()
        body = emulator.wait_result("orphan", 10)
        posted = emulator.of("done", "orphan")[0].at - killed
        took = assert_exits(worker, 1, 60)
        print(f"\n{timeline(emulator, t0)}\nComfyUI killed at +{killed - t0:.2f} s; exit 1 {took:.2f} s after the post")
    assert_error(body, "comfyui_unavailable", None)
    assert body["stopPod"] is True
    assert posted < 5.0
    assert_no_late_progress(emulator, ["orphan"])


def test_oversized_output_then_sigterm_while_idle(production: StartWorker) -> None:
    emulator = Emulator(hold_s=5.0)
    with emulator:
        worker = production(emulator, "oversized", max_output_bytes=4096)
        worker.wait_polling()
        t0 = time.monotonic()
        emulator.submit({"prompt": "a kite", "seed": 1}, "too-big")
        body = emulator.wait_result("too-big", 120)
        time.sleep(1.5)  # idle: back in a job-take long-poll
        signalled = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        took = assert_exits(worker, 128 + signal.SIGTERM, 30)
        print(f"\n{timeline(emulator, t0)}\nSIGTERM at +{signalled - t0:.2f} s (idle); exited {took:.2f} s later")
    assert_error(body, "output_too_large", None)
    assert "output" in body and body["output"]["status"] == "error"
    assert took < 5.0
    assert not [a for a in emulator.arrivals if a.kind in ("done", "progress") and a.at > signalled]
    assert emulator.violations == []
