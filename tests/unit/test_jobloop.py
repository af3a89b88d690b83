"""The adapted production job loop's parts (handler/doors/runpod/jobloop.py, backoff.py): the SDK release and
sources it was written against, the backoff, the outage log, the start refusal, and the drain's late cancel.
tests/integration/test_jobloop.py runs the loop itself against the job-API emulator."""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
import threading
import time
from typing import Any

import aiohttp
import pytest
import runpod
from multidict import CIMultiDict, CIMultiDictProxy
from runpod.http_client import TooManyRequests
from runpod.serverless import worker as sdk_worker
from runpod.serverless.modules import rp_job, rp_scale
from yarl import URL

from handler import logs
from handler.doors.runpod import jobloop, worker
from handler.doors.runpod.backoff import FIRST_DELAY_S, SUMMARY_EVERY_S, Backoff, Outage, is_outage
from handler.doors.runpod.drain import Drain, InFlight, JobCancel
from handler.paths import REPO
from handler.settings import Settings

# What jobloop.py was written against, by sha256 of the source: a new SDK release that changes any of these
# fails here, naming it, until someone has re-read it and the loop is checked again (DEPLOYMENT.md, "The job loop").
READ = {
    "rp_scale.JobScaler": (rp_scale.JobScaler, "b9b75d9270a3"),
    "rp_job.get_job": (rp_job.get_job, "8ce238208ca5"),
    "rp_job.get_stop_signals": (rp_job.get_stop_signals, "031a55cb8506"),
    "rp_job._job_stop_url": (rp_job._job_stop_url, "8f3407fceaf4"),
    "worker.run_worker": (sdk_worker.run_worker, "ce0b9b3f79f9"),
    "serverless.start": (runpod.serverless.start, "aa3f846dcfc5"),
}


def source_hash(obj: Any) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:12]


def test_the_loop_names_the_pinned_sdk() -> None:
    assert runpod.__version__ == jobloop.SDK_VERSION
    pins = (REPO / "constraints.txt").read_text()
    assert re.search(rf"^runpod=={re.escape(jobloop.SDK_VERSION)}$", pins, re.MULTILINE), "constraints.txt pins it"


@pytest.mark.parametrize("name", sorted(READ))
def test_the_sdk_source_the_loop_adapts_is_the_one_read(name: str) -> None:
    obj, expected = READ[name]
    assert source_hash(obj) == expected, f"{name} changed: re-read it against handler/doors/runpod/jobloop.py"


def test_another_sdk_release_is_refused_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    jobloop.check_sdk(jobloop.SDK_VERSION, Settings())
    with pytest.raises(jobloop.SdkMismatch, match=r"the RunPod SDK is 1\.99\.0.*ALPHA_ALLOW_SDK_MISMATCH=1") as info:
        jobloop.check_sdk("1.99.0", Settings())
    assert info.value.code == "sdk_mismatch"
    with caplog.at_level(logging.WARNING):
        jobloop.check_sdk("1.99.0", Settings(allow_sdk_mismatch=True))
    assert "RunPod SDK 1.99.0, not 1.12.0: starting anyway" in caplog.text


def test_the_worker_refuses_to_start_on_another_sdk(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The production worker says ``cannot start:`` and exits 1 before it waits at its start gate."""
    monkeypatch.setattr(worker, "load_or_exit", Settings)
    monkeypatch.setattr(logs, "configure", lambda _level: None)
    monkeypatch.setattr(worker, "sdk_runs_production", lambda _argv: True)
    monkeypatch.setattr(runpod, "__version__", "1.99.0")
    monkeypatch.setattr(worker, "wait_at_the_gate", lambda *_: pytest.fail("it went on to the gate"))
    with caplog.at_level(logging.ERROR):
        assert worker.main(gated=True) == 1
    assert "cannot start: sdk_mismatch: the RunPod SDK is 1.99.0, and this worker's job loop" in caplog.text


def test_the_backoff_doubles_from_half_a_second_with_jitter_up_to_the_cap() -> None:
    high, low = Backoff(30.0, rng=lambda: 1.0), Backoff(30.0, rng=lambda: 0.0)
    assert high.next_delay() == low.next_delay() == 0.0, "no wait before the first try"
    ceilings = []
    for _ in range(10):
        high.failed()
        low.failed()
        ceilings.append(high.next_delay())
        assert low.next_delay() == high.next_delay() / 2, "drawn from the upper half"
    assert ceilings[:7] == [FIRST_DELAY_S * 2**n for n in range(6)] + [30.0]
    assert ceilings[7:] == [30.0] * 3
    high.reset()
    assert high.next_delay() == 0.0


def test_an_outage_logs_its_start_a_summary_a_minute_and_its_end(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage("job-take", 30.0, rng=lambda: 0.5, clock=lambda: now[0])
    refused = aiohttp.ClientConnectionError("refused")
    with caplog.at_level(logging.INFO, logger="handler.doors.runpod.backoff"):
        for _ in range(1000):  # 1000 failures over 150 s
            outage.failed(refused)
            now[0] += 0.15
        outage.answered()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 + 2 + 1, lines  # the start, a summary at 60 s and at 120 s, the end
    assert lines[0].startswith("job-take failed (ClientConnectionError: refused); retrying with backoff up to 30 s")
    assert re.match(r"job-take still failing: 400 failed in the last 60 s, 401 since 60 s ago", lines[1])
    assert lines[3] == "job-take answered again after 1000 failed tries over 150.0 s"
    assert outage.delay() == 0.0, "an answer resets the backoff"
    assert SUMMARY_EVERY_S == 60.0


def test_what_counts_as_an_outage() -> None:
    info = aiohttp.RequestInfo(URL("http://127.0.0.1/x"), "GET", CIMultiDictProxy(CIMultiDict()))
    assert is_outage(aiohttp.ClientResponseError(info, (), status=503))
    assert is_outage(aiohttp.ClientConnectionError("refused"))
    assert is_outage(TimeoutError())
    assert not is_outage(TooManyRequests(info, (), status=429)), "the SDK debounces a 429 itself"
    assert not is_outage(ValueError("Job has missing field(s): id or input."))


def test_a_job_that_starts_during_the_cancel_grace_is_cancelled_too() -> None:
    """A job-take answered at the drain bound: its job's handler starts after the cancel; it is cancelled at
    once, so it posts ``cancelled`` instead of being cut off by the exit."""
    in_flight, late = InFlight(), JobCancel()
    held = [1]
    exited: list[int] = []

    def late_job() -> None:
        time.sleep(0.8)  # past the 0.5 s bound
        with in_flight.track("late", late):
            late.wait(10)
        held[0] = 0

    threading.Thread(target=late_job, daemon=True).start()
    Drain(in_flight, 0.5, held=lambda: held[0], exit=exited.append).run()
    assert exited == [0] and late.reason is not None and "(ALPHA_DRAIN_TIMEOUT_S)" in late.reason
