"""Job-takes while RunPod's job API fails: exponential backoff with jitter, and a log that stays short.

The SDK (runpod 1.12.0) retries a failed job-take at once and logs each try at ERROR: thousands a second, a CPU
core busy, and RunPod's log view for the worker flooded while its API is down. Here a failure waits
``Backoff.next_delay()`` before the next take, and ``Outage`` logs one line when the failures start, at most one
summary a minute while they last, and one when a take is answered again. The job-stop long-poll gets the same
(the SDK retries it once a second, each failure logged at ERROR).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import aiohttp

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
SUMMARY_EVERY_S = 60.0


def is_outage(exc: BaseException) -> bool:
    """An error of the job API or the way to it (refused, DNS, 5xx and other HTTP errors, timeouts). A 429 is
    not: the SDK's own 5 s debounce handles it, and it logs that at DEBUG."""
    from runpod.http_client import TooManyRequests

    if isinstance(exc, TooManyRequests):
        return False
    return isinstance(exc, aiohttp.ClientError | TimeoutError | OSError)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class Backoff:
    """Delays of about 0.5, 1, 2, 4 ... s up to ``cap_s``; each is drawn from its upper half, so that workers that
    lost the API together do not come back in step."""

    def __init__(self, cap_s: float, rng: Callable[[], float] = random.random) -> None:
        self.cap_s, self.rng = cap_s, rng
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next try; 0 while nothing failed."""
        if self.failures == 0:
            return 0.0
        ceiling = min(self.cap_s, FIRST_DELAY_S * 2.0 ** min(self.failures - 1, 32))
        return ceiling * (0.5 + 0.5 * self.rng())

    def failed(self) -> None:
        self.failures += 1

    def reset(self) -> None:
        self.failures = 0


class Outage:
    """Retries of one kind of request (``what``: "job-take", "job-stop poll") while the job API fails: the delay
    before the next try, and the outage's log: its first failure, a summary at most every ``SUMMARY_EVERY_S``,
    its end."""

    def __init__(
        self,
        what: str,
        cap_s: float,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.cap_s, self.clock = what, cap_s, clock
        self.backoff = Backoff(cap_s, rng)
        self.count = 0  # failures in this outage
        self.since_summary = 0
        self.started = self.last_summary = 0.0

    def delay(self) -> float:
        return self.backoff.next_delay()

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self.backoff.failed()
        self.count += 1
        self.since_summary += 1
        if self.count == 1:
            self.started = self.last_summary = now
            self.since_summary = 0
            log.warning(
                "%s failed (%s); retrying with backoff up to %g s (ALPHA_JOB_TAKE_BACKOFF_MAX_S), "
                "a summary at most once a minute",
                self.what,
                describe(exc),
                self.cap_s,
            )
        elif now - self.last_summary >= SUMMARY_EVERY_S:
            log.warning(
                "%s still failing: %d failed in the last %.0f s, %d since %.0f s ago; last: %s",
                self.what,
                self.since_summary,
                now - self.last_summary,
                self.count,
                now - self.started,
                describe(exc),
            )
            self.last_summary, self.since_summary = now, 0

    def answered(self) -> None:
        self.backoff.reset()
        if self.count:
            log.info(
                "%s answered again after %d failed tries over %.1f s",
                self.what,
                self.count,
                self.clock() - self.started,
            )
        self.count = self.since_summary = 0
