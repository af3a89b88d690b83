"""The SDK's production job loop (``rp_scale.JobScaler`` of runpod ``SDK_VERSION``), with three defects fixed.

1. **Log storm.** A failed job-take is retried at once and logged at ERROR, thousands of times a second. Here
   takes back off (``handler.doors.runpod.backoff``) and an outage is logged in a few lines.
2. **A job lost at SIGTERM.** The SDK's run loop ends at the signal once it holds no job, while a job-take may
   still be open: a job that take returns is taken from RunPod and never run. Here the drain counts an open take
   as a job held, the take gets ``TAKE_GRACE_S`` to bring a job already on its way (which is then run and posted
   like any other), and is then closed unanswered, so an idle worker still exits at once.
3. **An idle wait.** The run loop sleeps 0.1 s while it has no job, so a taken job waited 0-100 ms for its
   handler. Here it waits on the job queue itself.

How: a subclass that wraps the SDK's job fetcher (``get_job``, unchanged, inside ``take``) and replaces
``run_jobs``; the SDK's ``get_jobs``, ``handle_job``, job-stop monitor, result posts and heartbeat run as they
are. ``run_worker`` is ``runpod.serverless.start``'s production branch (the SDK's ``run_worker``) with this
class. It was written against one SDK release: ``check_sdk`` refuses another unless ``ALPHA_ALLOW_SDK_MISMATCH``
is set, and ``tests/unit/test_jobloop.py`` pins the SDK sources it read. Local modes (``--test_input``,
``--rp_serve_api``) use the SDK unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from runpod.http_client import ClientSession
from runpod.serverless.modules import rp_job, rp_scale
from runpod.serverless.modules.rp_fitness import run_fitness_checks
from runpod.serverless.modules.worker_state import JobsProgress, PingJobMirror

from handler.doors.runpod.backoff import Outage, is_outage
from handler.errors import StartupError
from handler.settings import Settings

log = logging.getLogger(__name__)

SDK_VERSION = "1.12.0"  # the release whose JobScaler, get_job and run_worker this module was written against
# After SIGTERM, how long an open job-take may still bring a job: one already on its way arrives within it; past
# it the take is closed, so RunPod hands no job to a worker that is leaving.
TAKE_GRACE_S = 1.0

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Jobs = list[dict[str, Any]] | None


class SdkMismatch(StartupError):
    code = "sdk_mismatch"


def check_sdk(installed: str, settings: Settings) -> None:
    """Refuse an SDK this loop was not written against, unless the deployer said to go on."""
    if installed == SDK_VERSION:
        return
    if settings.allow_sdk_mismatch:
        log.warning("RunPod SDK %s, not %s: starting anyway (ALPHA_ALLOW_SDK_MISMATCH)", installed, SDK_VERSION)
        return
    raise SdkMismatch(
        f"the RunPod SDK is {installed}, and this worker's job loop (handler/doors/runpod/jobloop.py) adapts "
        f"{SDK_VERSION}; re-read the SDK's rp_scale and rp_job, update SDK_VERSION, or set "
        f"ALPHA_ALLOW_SDK_MISMATCH=1 to start anyway"
    )


class AlphaJobScaler(rp_scale.JobScaler):  # type: ignore[misc]  # the SDK ships no type hints
    def __init__(self, config: dict[str, Any], settings: Settings) -> None:
        super().__init__(config)
        self.take_grace_s = min(TAKE_GRACE_S, settings.drain_timeout_s)
        self.take_outage = Outage("job-take", settings.job_take_backoff_max_s)
        self.stop_outage = Outage("job-stop poll", settings.job_take_backoff_max_s)
        self.sdk_take: Callable[[ClientSession, int], Awaitable[Jobs]] = rp_job.get_job
        self.sdk_stop_poll: Callable[[ClientSession], Awaitable[list[str]]] = rp_job.get_stop_signals
        self.jobs_fetcher = self.take
        if rp_job._job_stop_url() is not None:  # else the SDK turns its stop channel off, and says so
            self.stop_signals_fetcher = self.stop_poll
        self.taking = False  # a job-take request is open: the drain counts it as a job held
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()  # the shutdown, seen from the loop
        self._wake = asyncio.Event()  # something the run loop waits for changed

    # ---- shutdown, from a signal handler or the loop
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        await super().run()

    def kill_worker(self) -> None:
        super().kill_worker()
        if self._loop is not None:  # the signal handler runs between the loop's steps: wake it, thread-safe
            self._loop.call_soon_threadsafe(self._stop_and_wake)

    def _stop_and_wake(self) -> None:
        self._stopping.set()
        self._wake.set()

    # ---- job-take
    async def take(self, session: ClientSession, wanted: int) -> Jobs:
        """The SDK's job-take after the backoff's delay; an outage is logged here and answered "no job", so the
        SDK's loop neither logs it nor retries at once."""
        if not await self._pause(self.take_outage.delay()):
            return None  # stopping: no new take
        self.taking = True
        try:
            jobs = await self._take_within_grace(session, wanted)
            for job in jobs or ():
                self.job_progress.add(job)  # held before the take ends: the SDK adds it (a set) a loop step later
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.take_outage.failed(exc)
            return None
        finally:
            self.taking = False
            self._wake.set()
        self.take_outage.answered()
        return jobs

    async def stop_poll(self, session: ClientSession) -> list[str]:
        """The SDK's job-stop long-poll, with the same backoff and log as the take (the SDK: once a second, each
        failure at ERROR)."""
        if not await self._pause(self.stop_outage.delay()):
            return []
        try:
            ids = await self.sdk_stop_poll(session)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.stop_outage.failed(exc)
            return []
        self.stop_outage.answered()
        return ids

    async def _pause(self, delay_s: float) -> bool:
        """Wait out the backoff; False when the worker is stopping."""
        if delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay_s)
        return self.is_alive() and not self._stopping.is_set()

    async def _take_within_grace(self, session: ClientSession, wanted: int) -> Jobs:
        """The take; at SIGTERM it may run on for ``take_grace_s`` (a job it returns is run and drained like any
        other), and past that it is closed unanswered."""
        request = asyncio.ensure_future(self.sdk_take(session, wanted))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not request.done():
                await asyncio.wait({request}, timeout=self.take_grace_s)
            if not request.done():
                log.info("the job-take open at SIGTERM is still unanswered after %g s: closing it", self.take_grace_s)
                return None
            return request.result()
        finally:
            stopping.cancel()
            request.cancel()  # a no-op once done

    # ---- run
    def _more_may_come(self, running: int) -> bool:
        """Whether a job may still arrive: the worker takes jobs, a take is open, or one is taken, not started."""
        waiting = self.job_progress.get_job_count() - running
        return self.is_alive() or self.taking or not self.jobs_queue.empty() or waiting > 0

    async def run_jobs(self, session: ClientSession) -> None:
        """The SDK's run loop (runs each queued job as ``handle_job``), woken by the queue instead of a 0.1 s
        sleep, and running on after SIGTERM while a job may still come (``_more_may_come``)."""
        tasks: set[asyncio.Future[Any]] = set()
        getter: asyncio.Future[Any] | None = None
        try:
            while tasks or self._more_may_come(len(tasks)):
                if getter is None and len(tasks) < self.current_concurrency:
                    getter = asyncio.ensure_future(self.jobs_queue.get())
                woken = asyncio.ensure_future(self._wake.wait())
                waits = {woken, *tasks} | ({getter} if getter is not None else set())
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._wake.clear()
                if getter is not None and getter in done:
                    job = getter.result()
                    getter = None
                    task = asyncio.ensure_future(self.handle_job(session, job))
                    tasks.add(task)
                    self.jobs_tasks[job["id"]] = task
                tasks -= done
                self._log_failed(done)
        finally:
            if getter is not None:
                getter.cancel()

    @staticmethod
    def _log_failed(done: set[asyncio.Future[Any]]) -> None:
        """Fetch each ended task's exception, which the SDK's handle_job logged already (else asyncio warns)."""
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("a job's task ended with %r", task.exception())


def build_scaler(handler: Handler, settings: Settings) -> AlphaJobScaler:
    """The production loop's scaler; ``run_worker`` runs it (apart, so the drain can read ``taking`` first)."""
    config = {"handler": handler, "rp_args": {}, "reference_counter_start": time.perf_counter()}
    return AlphaJobScaler(config, settings)


def run_worker(scaler: AlphaJobScaler) -> None:
    """``runpod.serverless.worker.run_worker``: the fitness checks, the heartbeat, then the loop until SIGTERM."""
    asyncio.run(run_fitness_checks())
    mirror = PingJobMirror()
    JobsProgress().set_mirror(mirror)
    from runpod.serverless.worker import heartbeat  # the SDK's one Heartbeat, as run_worker uses it

    heartbeat.start_ping(mirror)
    scaler.start()
