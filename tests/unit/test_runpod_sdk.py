"""What the RunPod door relies on in the pinned SDK (runpod 1.12.0), pinned here so that an upgrade that changes
it fails a test instead of losing jobs or results silently; and the door's progress and drain logic, run
against the loopback job-API emulator (tests/runpod_emulator.py)."""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import runpod
from runpod.http_client import AsyncClientSession
from runpod.serverless.modules import rp_http, rp_job, rp_scale, worker_state
from runpod.serverless.modules.worker_state import JobsProgress

from handler.doors.runpod import worker
from handler.doors.runpod.drain import Drain, InFlight, JobCancel
from handler.doors.runpod.progress import ProgressUpdates, progress_body
from handler.errors import JobCancelled
from handler.request import Request
from handler.results import Result
from handler.settings import Settings
from handler.supervisor import DRAIN_SIGNAL
from tests.helpers import assert_error
from tests.runpod_emulator import API_KEY, ENDPOINT, POD_ID, Emulator, production_env

SDK = Path(runpod.__file__).parent


def test_the_pinned_sdk_is_the_one_read() -> None:
    assert runpod.__version__ == "1.12.0", "re-read rp_job, rp_scale, rp_http, rp_progress; then update the pins"


def test_the_sdk_installs_no_handler_for_the_drain_signal() -> None:
    assert DRAIN_SIGNAL == signal.SIGUSR1
    sources = "\n".join(p.read_text() for p in SDK.rglob("*.py"))
    assert "SIGUSR1" not in sources and "signal.signal(" in sources  # it does install SIGTERM/SIGINT handlers


def test_the_sdk_knows_a_local_run_by_the_job_take_variable() -> None:
    """worker.sdk_runs_production reads it: no progress posts to the placeholder URLs of a local run."""
    assert worker_state.IS_LOCAL_TEST is True  # no RUNPOD_WEBHOOK_GET_JOB in the unit tests' environment
    assert worker.sdk_runs_production([]) is False


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The SDK's job-done URL pointed at the emulator (it is read from the environment at import)."""
    with Emulator(hold_s=0.2) as emu:
        done = emu.worker_env()["RUNPOD_WEBHOOK_POST_OUTPUT"].replace("$RUNPOD_POD_ID", POD_ID)
        monkeypatch.setattr(rp_http, "JOB_DONE_URL", done)
        monkeypatch.setenv("RUNPOD_AI_API_KEY", API_KEY)
        yield emu
    assert emu.violations == []


def test_jobs_progress_holds_a_job_until_its_result_was_posted(emulator: Emulator) -> None:
    """The drain waits on JobsProgress: a job counts from job-take until after its job-done post."""
    held_after_post: list[int] = []
    jobs = [[{"id": "held-1", "input": {}}]]

    async def fetch(_session: Any, _wanted: int) -> list[dict[str, Any]] | None:
        if jobs:
            return jobs.pop()
        scaler.kill_worker()
        return None

    async def run_and_post(session: Any, config: dict[str, Any], job: dict[str, Any]) -> None:
        await rp_job.handle_job(session, config, job)  # the SDK's own: run the handler, post the result
        held_after_post.append(JobsProgress().get_job_count())

    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        return {"ok": job["id"]}

    scaler = rp_scale.JobScaler(
        {"handler": handler, "jobs_fetcher": fetch, "jobs_handler": run_and_post, "stop_signals_fetcher": fetch}
    )
    asyncio.run(scaler.run())
    assert emulator.results("held-1") == [{"output": {"ok": "held-1"}}]
    assert held_after_post == [1], "still held once the post was answered"
    assert JobsProgress().get_job_count() == 0


def test_our_progress_post_is_what_progress_update_sends(emulator: Emulator) -> None:
    job = {"id": "same-body", "input": {}}
    runpod.serverless.progress_update(job, {"step": 1})
    emulator.wait_for("progress", 10)

    async def ours() -> None:
        updates = ProgressUpdates(job, asyncio.get_running_loop())
        await asyncio.to_thread(updates.on_progress, 2, 4, "3")
        await updates.close()

    asyncio.run(ours())
    sdk, mine = emulator.of("progress", "same-body")
    assert sdk.body == {"status": "IN_PROGRESS", "output": {"step": 1}}
    assert mine.body == {"status": "IN_PROGRESS", "output": progress_body(2, 4, "3")}
    assert mine.body["output"] == {"status": "running", "step": 2, "steps": 4, "percent": 50, "node": "3"}
    assert sdk.query == mine.query == {"gpu": "emulated", "isStream": "false"}


class FakeGenerator:
    """Generator.generate's contract: progress from the job's thread, then a Result (a real RGBA PNG)."""

    def __init__(self, steps: int, step_s: float) -> None:
        self.settings = Settings()
        self.steps, self.step_s = steps, step_s
        png = Path(__file__).parent.parent.parent / "custom_nodes"  # any bytes: success_output only encodes them
        self.png = b"\x89PNG" + bytes(str(png), "ascii")

    def generate(self, request: Request, *, job_id: str, cancel: Any, on_progress: Any, deadline: Any) -> Result:
        for step in range(1, self.steps + 1):
            time.sleep(self.step_s)
            if cancel is not None and cancel.is_set():
                raise JobCancelled("prompt p was cancelled")
            if on_progress is not None:
                on_progress(step, self.steps, "3")
        return Result(image=self.png, filename="alpha_x.png", info={"seed": 1})


def run_jobs(emulator: Emulator, handler: Any, count: int) -> None:
    async def main() -> None:
        async with AsyncClientSession() as session:
            for n in range(count):
                await rp_job.handle_job(session, {"handler": handler}, {"id": f"order-{n}", "input": {"prompt": "x"}})

    asyncio.run(main())


def late_updates(emulator: Emulator, count: int) -> list[str]:
    late = []
    for n in range(count):
        (result,) = emulator.of("done", f"order-{n}")
        late += [f"order-{n}" for p in emulator.of("progress", f"order-{n}") if p.answered > result.answered]
    return late


def test_no_progress_update_reaches_runpod_after_the_result(emulator: Emulator) -> None:
    """RunPod is slow to take an update (0.3 s); the job's last steps report just before it returns."""
    emulator.progress_delay_s = 0.3
    handler = worker.make_handler(FakeGenerator(steps=6, step_s=0.05), progress=True)  # type: ignore[arg-type]
    run_jobs(emulator, handler, 8)
    assert late_updates(emulator, 8) == []
    for n in range(8):
        updates = emulator.of("progress", f"order-{n}")
        assert len(updates) == 1, "at most one a second: a 0.3 s job sends its first"
        assert updates[0].body["output"]["step"] == 1
        assert emulator.results(f"order-{n}")[0]["output"]["status"] == "success"


def test_the_sdks_own_progress_update_can_arrive_after_the_result(emulator: Emulator) -> None:
    """Why the door does not call progress_update: the same job with the SDK's fire-and-forget thread."""
    emulator.progress_delay_s = 0.3

    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        runpod.serverless.progress_update(job, progress_body(6, 6, "3"))
        return {"status": "success"}

    run_jobs(emulator, handler, 3)
    time.sleep(1.0)
    assert late_updates(emulator, 3) == ["order-0", "order-1", "order-2"]


def test_updates_are_at_most_one_a_second_and_none_after_close() -> None:
    posted: list[tuple[float, int]] = []

    async def main() -> None:
        updates = ProgressUpdates({"id": "rate"}, asyncio.get_running_loop())

        async def post(body: dict[str, Any]) -> None:
            posted.append((time.monotonic(), body["step"]))

        updates._post = post  # type: ignore[method-assign]

        def steps() -> None:
            for step in range(1, 26):
                updates.on_progress(step, 25, "3")
                time.sleep(0.1)

        await asyncio.to_thread(steps)
        await updates.close()
        updates.on_progress(25, 25, "3")
        await asyncio.sleep(0.1)

    asyncio.run(main())
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(posted)]
    assert 2 <= len(posted) <= 3 and all(gap >= 0.99 for gap in gaps), posted
    assert posted[0][1] == 1


def test_the_drain_waits_for_held_jobs_then_exits() -> None:
    held = [1]
    exited: list[tuple[float, int]] = []
    drain = Drain(InFlight(), 5.0, held=lambda: held[0], exit=lambda code: exited.append((time.monotonic(), code)))
    started = time.monotonic()
    threading.Timer(0.5, lambda: held.__setitem__(0, 0)).start()
    drain.run()
    assert len(exited) == 1 and 0.5 <= exited[0][0] - started < 1.0 and exited[0][1] == 0


def test_the_drain_waits_for_the_handlers_own_jobs_too() -> None:
    """RunPod's local API counts no job in the SDK's JobsProgress: a /runsync whose handler still runs (ComfyUI
    died under it) is waited for, and there the drain leaves the exit to the local server, which answers first."""
    in_flight, running = InFlight(), threading.Event()
    exited: list[int] = []

    def handler() -> None:
        with in_flight.track("runsync", JobCancel()):
            running.set()
            time.sleep(0.5)

    threading.Thread(target=handler, daemon=True).start()
    assert running.wait(5)
    started = time.monotonic()
    Drain(in_flight, 5.0, held=lambda: 0, exit=exited.append, ends_process=False).run()
    waited = time.monotonic() - started
    assert 0.5 <= waited < 1.0 and exited == []
    Drain(InFlight(), 5.0, held=lambda: 0, exit=exited.append).run()
    assert exited == [0], "the production loop's drain ends the process"


def test_past_the_drain_bound_the_job_is_cancelled_with_the_reason() -> None:
    in_flight, cancel = InFlight(), JobCancel()
    exited: list[int] = []
    held = [1]
    running = threading.Event()

    def job() -> None:
        with in_flight.track("long", cancel):
            running.set()
            cancel.wait(10)
        held[0] = 0  # the job ended and its error was posted

    threading.Thread(target=job, daemon=True).start()
    assert running.wait(5)
    started = time.monotonic()
    Drain(in_flight, 0.5, held=lambda: held[0], exit=exited.append).run()
    assert 0.5 <= time.monotonic() - started < 1.5 and exited == [0]
    assert cancel.reason is not None and "drain time of 0.5 s (ALPHA_DRAIN_TIMEOUT_S)" in cancel.reason
    # The door reports that reason instead of RunPod's "cancelled".
    output = worker.handle_job(FakeGenerator(steps=2, step_s=0.01), {"id": "long", "input": {"prompt": "x"}}, cancel)  # type: ignore[arg-type]
    body = assert_error(output, "cancelled", None, words="the worker is shutting down (SIGTERM)")
    assert "submit it again" in body["message"]


def test_the_emulator_takes_the_url_forms_the_sdk_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """rp_job builds job-take, job-take-batch and job-stop URLs from RUNPOD_WEBHOOK_GET_JOB at import."""
    with Emulator(hold_s=0.1) as emu:
        take = emu.worker_env()["RUNPOD_WEBHOOK_GET_JOB"].replace("$ID", POD_ID)
        monkeypatch.setattr(rp_job, "JOB_GET_URL", take)
        monkeypatch.setenv("RUNPOD_AI_API_KEY", API_KEY)
        emu.submit({"prompt": "a"}, "t-1")
        emu.submit({"prompt": "b"}, "t-2")
        emu.submit({"prompt": "c"}, "t-3")
        emu.stop("t-9")

        async def main() -> tuple[Any, Any, Any]:
            async with AsyncClientSession() as session:
                one = await rp_job.get_job(session, 1)
                two = await rp_job.get_job(session, 2)
                stops = await rp_job.get_stop_signals(session)
                return one, two, stops

        one, two, stops = asyncio.run(main())
    assert one == [{"id": "t-1", "input": {"prompt": "a"}}]
    assert [job["id"] for job in two] == ["t-2", "t-3"]
    assert stops == ["t-9"]
    assert [a.kind for a in emu.arrivals] == ["take", "take-batch", "take-batch", "stop-poll"]
    assert emu.arrivals[1].query["batch_size"] == "2" and emu.arrivals[0].query["job_in_progress"] == "0"
    assert emu.violations == [] and ENDPOINT in take


def test_a_production_worker_is_handed_loopback_urls_only() -> None:
    emulator = Emulator()
    env = production_env({"PATH": "/usr/bin", "RUNPOD_WEBHOOK_PING": "https://api.runpod.ai/ping"}, emulator)
    assert env["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] == env["RUNPOD_SKIP_GPU_CHECK"] == "true"
    assert env["RUNPOD_WEBHOOK_PING"].startswith(emulator.url), "the emulator's URLs replace inherited ones"
    with pytest.raises(AssertionError, match="a URL beyond loopback"):
        production_env({"BUCKET_ENDPOINT_URL": "https://s3.example.com"}, emulator)


class FakeWorker:
    """What the supervisor does to its worker process, recorded."""

    def __init__(self, exits_after: int) -> None:
        self.signals: list[int] = []
        self.waited: list[float] = []
        self.exits_after = exits_after

    def poll(self) -> int | None:
        return None if len(self.signals) < self.exits_after else 0

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def wait(self, timeout: float) -> int:
        self.waited.append(timeout)
        return 0


@pytest.mark.parametrize(
    ("args", "signals", "wait_s"),
    [
        ([], [signal.SIGTERM, signal.SIGUSR1], 7.0 + 20.0),  # the RunPod worker: SIGTERM, then drain
        (["serve"], [signal.SIGTERM], 30.0),  # the alpha API has no drain signal (SIGUSR1 would kill it)
    ],
)
def test_the_supervisor_drains_the_runpod_worker(args: list[str], signals: list[int], wait_s: float) -> None:
    from handler.supervisor import Supervisor

    supervisor = Supervisor(Settings(drain_timeout_s=7.0), args)
    fake = FakeWorker(exits_after=99)
    supervisor.worker = fake  # type: ignore[assignment]
    supervisor._stop_worker()
    assert fake.signals == signals
    assert fake.waited == [wait_s]
