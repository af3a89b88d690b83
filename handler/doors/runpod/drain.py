"""The RunPod worker's way out on SIGTERM (a scale-down, a new release): finish, or cancel and report, then exit.

The supervisor forwards SIGTERM, on which the SDK takes no more jobs and lets the ones it holds run to their
posted result, then sends ``DRAIN_SIGNAL``, which starts ``Drain``: it waits until the SDK holds no job (its
``JobsProgress`` counts a job from job-take until its result was posted: ``tests/unit/test_runpod_sdk.py`` pins
that), at most ``ALPHA_DRAIN_TIMEOUT_S``. Past the bound it cancels the jobs in flight with a reason, so their
prompts are interrupted and ``cancelled`` is posted for them, waits for those posts (``CANCEL_GRACE_S``), and
exits. The SDK's own loop would otherwise linger in its job-take and job-stop long-polls for up to 90 s.

RunPod's local API (``--rp_serve_api``) counts no job there, and answers a ``/runsync`` only after the handler
returned: so the drain also waits for the jobs this worker's handler runs (``InFlight``), and there it does not end
the process itself. uvicorn, which had SIGTERM first, sends the answers it owes and then stops the SDK's server,
so a job in flight when ComfyUI died still answers ``comfyui_unavailable``. The supervisor's bound stays the
backstop.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from handler.supervisor import DRAIN_GRACE_S, DRAIN_SIGNAL

log = logging.getLogger(__name__)

# After the bound: how long the cancelled jobs get to stop their prompts and post their errors (within the
# supervisor's grace).
CANCEL_GRACE_S = DRAIN_GRACE_S - 5.0
POLL_S = 0.05


class JobCancel(threading.Event):
    """A job's cancel event, with why it was set when the worker, not RunPod, cancelled it."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self.set()


class InFlight:
    """The jobs this worker's handler runs now, by id, each with its cancel event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobCancel] = {}

    @contextlib.contextmanager
    def track(self, job_id: str, cancel: JobCancel) -> Iterator[None]:
        with self._lock:
            self._jobs[job_id] = cancel
        try:
            yield
        finally:
            with self._lock:
                self._jobs.pop(job_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def cancel_all(self, reason: str) -> list[str]:
        with self._lock:
            jobs = dict(self._jobs)
        for cancel in jobs.values():
            cancel.cancel(reason)
        return sorted(jobs)


def sdk_jobs_held() -> int:
    """How many jobs the SDK holds: taken and not yet posted."""
    from runpod.serverless.modules.worker_state import JobsProgress

    count: int = JobsProgress().get_job_count()
    return count


class Drain:
    """Started once, from ``DRAIN_SIGNAL``'s handler; ends the process when ``ends_process`` (the SDK's production
    loop), else leaves that to the local server it runs."""

    def __init__(
        self,
        in_flight: InFlight,
        timeout_s: float,
        *,
        held: Callable[[], int] = sdk_jobs_held,
        exit: Callable[[int], None] = os._exit,
        ends_process: bool = True,
    ) -> None:
        self.in_flight, self.timeout_s, self.sdk_held, self.exit = in_flight, timeout_s, held, exit
        self.ends_process = ends_process
        self.thread: threading.Thread | None = None

    def held(self) -> int:
        """Jobs not yet answered: the SDK's (until posted) and our handler's (until it returns), whichever more."""
        return max(self.sdk_held(), len(self.in_flight))

    def install(self) -> None:
        signal.signal(DRAIN_SIGNAL, self.on_signal)

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.run, name="drain", daemon=True)
            self.thread.start()

    def run(self) -> None:
        """Wait for the jobs held, cancel them past the bound, then exit."""
        log.info("draining: %d job(s) held; waiting up to %.0f s for them", self.held(), self.timeout_s)
        if not self._wait_until_idle(self.timeout_s):
            reason = (
                f"the worker is shutting down (SIGTERM) and the job did not finish within the drain time of "
                f"{self.timeout_s:g} s (ALPHA_DRAIN_TIMEOUT_S); its prompt was interrupted: submit it again"
            )
            log.warning("drain time of %g s is up: cancelling %s", self.timeout_s, self.in_flight.cancel_all(reason))
            if not self._wait_until_idle(CANCEL_GRACE_S, cancel_reason=reason):
                log.error("%d job(s) still held %.0f s after their cancel; exiting anyway", self.held(), CANCEL_GRACE_S)
        if self.ends_process:
            self._leave()
        else:
            log.info("drained; the local API stops once it has sent its answers")

    def _wait_until_idle(self, seconds: float, cancel_reason: str | None = None) -> bool:
        """With ``cancel_reason``, a job whose handler starts meanwhile (its take ended at the bound) is cancelled
        too, so it posts ``cancelled`` before the exit rather than being cut off."""
        deadline = time.monotonic() + seconds
        while self.held() > 0:
            if time.monotonic() >= deadline:
                return False
            if cancel_reason is not None:
                self.in_flight.cancel_all(cancel_reason)
            time.sleep(POLL_S)
        return True

    def _leave(self) -> None:
        """The SDK's loop may sit in a long-poll for a minute: stop its ping process (its only child) and exit."""
        for child in multiprocessing.active_children():
            child.terminate()
            child.join(5)
        log.info("drained; the worker exits")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self.exit(0)
