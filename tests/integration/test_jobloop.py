"""The production job loop (handler/doors/runpod/jobloop.py) under RunPod's own failures: the real worker
(``python -m handler``, the SDK's production loop as adapted, in front of the session's ComfyUI) against the
loopback job-API emulator: an unreachable API, 5xx, SIGTERM racing a job-take, and the wait between a take and
its handler. Each worker is started through ``production_env`` (fitness checks off, loopback URLs only)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from handler.doors.runpod.jobloop import TAKE_GRACE_S
from handler.supervisor import DRAIN_SIGNAL
from tests.helpers import RunningComfy, assert_success_contract
from tests.runpod_emulator import Emulator, spawn_worker

pytestmark = pytest.mark.comfyui
SIZE = 64
CAP_S = 4.0  # ALPHA_JOB_TAKE_BACKOFF_MAX_S in these tests: a short cap keeps them quick
DRAIN_S = 20.0  # ALPHA_DRAIN_TIMEOUT_S, its default: room for a first job that loads the models on a loaded machine
# A loaded 2-core machine's room on top of a bound under test: scheduling, a log line's write, a job's few steps.
SLACK_S = 10.0
MAX_TAKES, MAX_LINES = 40, 5  # the bounds for one outage
# The job loop's log lines an outage may cost: ours for job-takes and job-stop polls (handler.doors.runpod.backoff)
# and the SDK's per-failure ERROR lines for both. The SDK's heartbeat, a process apart left as shipped, logs each
# failed ping on its own (DEPLOYMENT.md, "What RunPod sees"): not counted.
OUTAGE_LINE = re.compile(r"job-take|job-stop|Failed to get job|monitor_stop_signals")
ACCEPTED = re.compile(r"^(\S+ \S+) INFO handler\.generate \[job (\S+)\] job accepted", re.MULTILINE)


@dataclass
class LoopWorker:
    proc: subprocess.Popen[bytes]
    log_path: Path
    emulator: Emulator

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def outage_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if OUTAGE_LINE.search(line)]

    def wait_polling(self, timeout: float = 120) -> None:
        """Ready: a job-take is open at the emulator."""
        deadline = time.monotonic() + timeout
        while self.emulator.open_takes == 0:
            assert self.proc.poll() is None, f"the worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"no job-take within {timeout:.0f} s:\n{self.log()[-3000:]}"
            time.sleep(0.02)

    def wait_log(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.log()):
            assert self.proc.poll() is None, f"the worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout:.0f} s:\n{self.log()[-3000:]}"
            time.sleep(0.1)

    def run_job(self, job_id: str, timeout: float) -> dict[str, Any]:
        self.emulator.submit({"prompt": "a glass apple", "seed": 7}, job_id)
        output: dict[str, Any] = self.emulator.wait_result(job_id, timeout)["output"]
        return output


@contextlib.contextmanager
def loop_worker(comfy: RunningComfy, emulator: Emulator, tmp_path: Path, name: str) -> Iterator[LoopWorker]:
    settings = comfy.settings.replace(
        test_size=SIZE, job_take_backoff_max_s=CAP_S, drain_timeout_s=DRAIN_S, warmup=False
    )
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as out:
        proc = spawn_worker(settings, emulator, out)
    try:
        yield LoopWorker(proc, log_path, emulator)
    finally:  # the group: the SDK's heartbeat process outlives a killed worker
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def test_an_unreachable_job_api_is_retried_with_backoff_then_jobs_flow(comfy: RunningComfy, tmp_path: Path) -> None:
    """Nothing listens on the job API's port for 20 s; then it comes back and a job goes through."""
    emulator = Emulator(hold_s=2.0)
    with loop_worker(comfy, emulator, tmp_path, "unreachable") as worker:
        worker.wait_log(OUTAGE_LINE.pattern, timeout=120)  # its first failed take
        time.sleep(20.0)
        with emulator:
            back = time.monotonic()
            output = worker.run_job("after-outage", timeout=CAP_S + 60)
            assert_success_contract(output)
            (take,) = emulator.of("take", "after-outage")
            assert take.at - back <= CAP_S + SLACK_S, "taken within the backoff cap of the API's return"
            worker.wait_log(r"job-stop poll answered again", timeout=CAP_S + SLACK_S)
            lines = worker.outage_lines()  # before the emulator goes and the worker's takes fail again
        tries = int(re.findall(r"job-take answered again after (\d+) failed tries", worker.log())[0])
        print(f"\n20 s unreachable: {tries} job-takes, {len(lines)} lines; taken {take.at - back:.2f} s after")
        assert 5 <= tries <= MAX_TAKES, f"{tries} job-takes in 20 s"
        assert len(lines) <= MAX_LINES, "\n".join(lines[:20])
        assert emulator.violations == []


def test_5xx_for_10_s_is_retried_with_backoff_then_jobs_flow(comfy: RunningComfy, tmp_path: Path) -> None:
    with Emulator(hold_s=2.0) as emulator, loop_worker(comfy, emulator, tmp_path, "5xx") as worker:
        worker.wait_polling()
        emulator.fail_takes_until = time.monotonic() + 10.0
        time.sleep(10.0)
        output = worker.run_job("after-5xx", timeout=CAP_S + 60)
        assert_success_contract(output)
        failed = [a for a in emulator.of("take") if a.status == 503]
        (take,) = emulator.of("take", "after-5xx")
        print(f"\n10 s of 503: {len(failed)} job-takes; taken {take.at - emulator.fail_takes_until:.2f} s after")
        assert 3 <= len(failed) <= MAX_TAKES, f"{len(failed)} job-takes answered 503 in 10 s"
        assert take.at - emulator.fail_takes_until <= CAP_S + SLACK_S
        worker.wait_log(r"job-take answered again", timeout=5)
        lines = worker.outage_lines()
        assert len(lines) <= MAX_LINES, "\n".join(lines[:20])
        assert "503" in lines[0] and "job-take answered again" in lines[-1], lines


def stop(worker: LoopWorker) -> None:
    """What the supervisor does on SIGTERM (handler/supervisor.py, ``_stop_worker``)."""
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.send_signal(DRAIN_SIGNAL)


ORDERS = ["handed-out-then-signal", "signal-then-handed-out", "signal-then-late-job"]


@pytest.mark.parametrize("order", ORDERS)
def test_a_job_take_open_at_sigterm_loses_no_job(comfy: RunningComfy, tmp_path: Path, order: str) -> None:
    """The signal lands while a job is on its way to the worker (the emulator signals the worker just before it
    sends the job); or it comes first and a job is handed out on the take still open; or the job comes after the
    take's grace. Every job handed out is run and posted exactly once, one not handed out stays with RunPod, and
    the worker exits within the drain bound (at once when idle)."""
    with Emulator(hold_s=DRAIN_S) as emulator, loop_worker(comfy, emulator, tmp_path, order) as worker:
        worker.wait_polling()
        signalled: list[float] = []

        def signal_now(_job_id: str = "") -> None:
            stop(worker)
            signalled.append(time.monotonic())

        if order == "handed-out-then-signal":
            emulator.on_hand_out = signal_now
        else:
            signal_now()
        if order == "signal-then-late-job":  # the take is closed, unanswered, once its grace is up
            deadline = signalled[0] + TAKE_GRACE_S + SLACK_S
            while emulator.open_takes and time.monotonic() < deadline:
                time.sleep(0.02)
            assert emulator.open_takes == 0, "the take open at the signal was closed"
        emulator.submit({"prompt": "a glass apple", "seed": 10 + ORDERS.index(order)}, "raced")
        code = worker.proc.wait(DRAIN_S + SLACK_S)
        exited = time.monotonic() - signalled[0]
        handed_out, results = emulator.of("take", "raced"), emulator.results("raced")
        print(f"\n{order}: {len(handed_out)} handed out, {len(results)} posted; exited {exited:.2f} s after")
        assert len(handed_out) == (0 if order == "signal-then-late-job" else 1), worker.log()[-3000:]
        assert len(results) == len(handed_out), f"{order}: {len(results)} results:\n{worker.log()[-3000:]}"
        if results:
            assert_success_contract(results[0]["output"])
            assert code == 0 and exited <= DRAIN_S + SLACK_S
        else:
            assert code == 0 and exited <= TAKE_GRACE_S + SLACK_S, "idle: out once the take's grace is up"
        assert emulator.violations == []


def test_a_taken_job_starts_its_handler_at_once(comfy: RunningComfy, tmp_path: Path) -> None:
    """20 steady jobs: from the emulator answering the take with the job to the handler's "job accepted" line
    (its timestamp, moved onto the monotonic clock). The same prompt and seed each time: ComfyUI answers from its
    cache, so the jobs are quick and the delay measured is the loop's own."""
    offset = time.time() - time.monotonic()
    with Emulator(hold_s=5.0) as emulator, loop_worker(comfy, emulator, tmp_path, "steady") as worker:
        worker.wait_polling()
        for n in range(20):
            assert_success_contract(worker.run_job(f"steady-{n}", timeout=120))
        accepted = {job: parse_time(at) - offset for at, job in ACCEPTED.findall(worker.log())}
        delays = [accepted[f"steady-{n}"] - emulator.of("take", f"steady-{n}")[0].answered for n in range(20)]
    median_ms = statistics.median(delays) * 1000
    print(f"\ntake to handler, 20 jobs: median {median_ms:.1f} ms, max {max(delays) * 1000:.1f} ms")
    assert median_ms <= 10.0, f"median {median_ms:.1f} ms: {sorted(round(d * 1000, 1) for d in delays)}"


def parse_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
