"""The simulation: one endpoint, one sequence of requests, event by event.

The model, every rule of it stated:

- One queue, first come first served; a worker runs one job at a time (ComfyUI's queue is serial).
- ``active`` workers are up all the time and never cold-start. Flex workers (up to ``max`` in all) are started by
  the scaler, take ``cold_start_s`` to become ready, and stop after ``idle_timeout_s`` without a job.
- The scaler looks at the queue every ``look_s`` seconds on a fixed grid (t = 0, look_s, 2 look_s, ...) while
  requests are queued, and starts at most ``starts_per_look`` workers a look (0: no limit).
- A free request goes to an idle active worker first, else to the flex worker that became idle last, so the
  ones idle longest are the ones the idle timeout stops (a pool that shrinks when traffic falls).
- Billing is RunPod's: a flex worker from the moment it is started (its cold start included) until it stops,
  rounded up to a whole second; active workers all the time.

Why a hand-written event loop and not SimPy: every event here is a tuple on a heap or a deque, and the queue is
a range of the (sorted) arrival list, so a day of 864,000 requests runs in seconds; SimPy would wrap each of
them in a process and an event object for the same result. numpy draws the arrivals and job times.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from handler.capacity.endpoint import QUEUE_DELAY, Endpoint, Timing

INF = math.inf
ACTIVE = -1.0  # the start time of an active worker: it was never started, and is billed apart
ROUNDING_SLACK = 1e-9  # float error must not round a whole second up to the next one


@dataclass
class Tally:
    """What one run counted; ``result.summary`` turns it into the figures an operator reads."""

    waits: np.ndarray  # seconds each request waited in the queue, in arrival order
    job_s: np.ndarray  # each request's job time, in arrival order
    cold_jobs: int  # requests that waited for a worker to finish its cold start
    cold_starts: int
    span_s: float  # from 0 to the end of the last job, at least the simulated time
    billed_flex_s: int
    billed_active_s: int
    busy_flex_s: float
    busy_active_s: float
    samples: np.ndarray  # rows of (t, busy, idle, starting, queued) every sample_s; empty without sampling


class _Endpoint:
    """The endpoint between two events, and what happens at each kind of event."""

    def __init__(self, arrivals: np.ndarray, job_s: np.ndarray, endpoint: Endpoint, timing: Timing) -> None:
        # Python floats: numpy's scalars are several times slower one at a time.
        self.arrivals: list[float] = np.asarray(arrivals, dtype=float).tolist()
        self.jobs: list[float] = np.asarray(job_s, dtype=float).tolist()
        self.waits = [0.0] * len(self.arrivals)
        self.endpoint, self.timing = endpoint, timing
        self.per_look = timing.starts_per_look or endpoint.max
        self.free_active = endpoint.active
        self.idle: deque[tuple[float, float]] = deque()  # (idle since, started at) of idle flex workers, oldest first
        self.starting: deque[tuple[float, float]] = deque()  # (ready at, started at); one cold start length: FIFO
        self.busy: list[tuple[float, float]] = []  # heap of (job ends at, started at, or ACTIVE)
        self.flex = 0  # flex workers up: starting, idle or busy
        self.head = self.nxt = 0  # requests [head, nxt) are queued; [0, head) have started
        self.tick = INF  # the scaler's next look, while requests are queued
        self.cold_jobs = self.cold_starts = self.billed_flex = 0
        self.busy_flex = self.busy_active = self.last_end = 0.0

    def next_event(self) -> tuple[float, Callable[[float], None]] | None:
        """The earliest event; at a tie a job ends first, then a worker becomes ready, a request arrives, a worker
        stops, and last the scaler looks."""
        now, handle = self.busy[0][0] if self.busy else INF, self.job_ends
        if self.starting and self.starting[0][0] < now:
            now, handle = self.starting[0][0], self.worker_ready
        if self.nxt < len(self.arrivals) and self.arrivals[self.nxt] < now:
            now, handle = self.arrivals[self.nxt], self.request_arrives
        if self.idle and self.idle[0][0] + self.endpoint.idle_timeout_s < now:
            now, handle = self.idle[0][0] + self.endpoint.idle_timeout_s, self.worker_stops
        if self.head < self.nxt and self.tick < now:
            now, handle = self.tick, self.scaler_looks
        return None if now == INF else (now, handle)

    def take(self, now: float, started: float) -> None:
        """A worker (started at ``started``, or ACTIVE) takes the request at the head of the queue."""
        head = self.head
        self.waits[head] = now - self.arrivals[head]
        job = self.jobs[head]
        heapq.heappush(self.busy, (now + job, started))
        if started == ACTIVE:
            self.busy_active += job
        else:
            self.busy_flex += job
        self.head = head + 1

    def job_ends(self, now: float) -> None:
        """The worker takes the next request, or goes idle."""
        _, started = heapq.heappop(self.busy)
        self.last_end = now
        if self.head < self.nxt:
            self.take(now, started)
        elif started == ACTIVE:
            self.free_active += 1
        else:
            self.idle.append((now, started))

    def worker_ready(self, now: float) -> None:
        _, started = self.starting.popleft()
        if self.head < self.nxt:
            self.cold_jobs += 1
            self.take(now, started)
        else:
            self.idle.append((now, started))

    def request_arrives(self, now: float) -> None:
        """Taken at once by an idle worker (active first, then the flex worker idle least long), or queued."""
        self.nxt += 1
        if self.head + 1 < self.nxt:
            return  # others were queued before it
        if self.free_active:
            self.free_active -= 1
            self.take(now, ACTIVE)
        elif self.idle:
            self.take(now, self.idle.pop()[1])
        else:
            self.tick = math.ceil(now / self.timing.look_s) * self.timing.look_s

    def worker_stops(self, now: float) -> None:
        _, started = self.idle.popleft()
        self.billed_flex += math.ceil(now - started - ROUNDING_SLACK)
        self.flex -= 1

    def wanted(self, now: float) -> int:
        """How many workers the scaler's rule starts at this look, before the ``max`` and per-look caps."""
        scaler, queued = self.endpoint.scaler, self.nxt - self.head
        up = self.endpoint.active + self.flex
        if scaler.kind == QUEUE_DELAY:
            waited = bisect.bisect_right(self.arrivals, now - scaler.value, self.head, self.nxt) - self.head
            # Nobody up at all: a queued request would wait forever, so the first worker starts at once.
            return max(waited - len(self.starting), 1 if up == 0 else 0)
        return math.ceil((queued + len(self.busy)) / scaler.value) - up

    def scaler_looks(self, now: float) -> None:
        room = self.endpoint.max - self.endpoint.active - self.flex
        start = max(0, min(self.wanted(now), room, self.per_look))
        ready = now + self.timing.cold_start_s
        self.starting.extend([(ready, now)] * start)
        self.flex += start
        self.cold_starts += start
        # At max nobody can be added until the queue empties (only an idle worker stops), so the looks pause.
        self.tick = now + self.timing.look_s if room > start else INF

    def state(self) -> tuple[int, int, int, int]:
        """(busy, idle, starting, queued)."""
        return len(self.busy), self.free_active + len(self.idle), len(self.starting), self.nxt - self.head


def run(
    arrivals: np.ndarray,
    job_s: np.ndarray,
    endpoint: Endpoint,
    timing: Timing,
    *,
    horizon_s: float,
    sample_s: float | None = None,
) -> Tally:
    """Simulate the requests (sorted arrival times, seconds from 0, each with its job time) until every job has
    ended and every flex worker has stopped; with ``sample_s``, record the state every ``sample_s`` seconds."""
    sim = _Endpoint(arrivals, job_s, endpoint, timing)
    samples: list[tuple[float, int, int, int, int]] = []
    next_sample = 0.0 if sample_s else INF
    while (event := sim.next_event()) is not None:
        now, handle = event
        while now >= next_sample:
            samples.append((next_sample, *sim.state()))
            next_sample += sample_s or INF
        handle(now)
    span = max(horizon_s, sim.last_end)
    return Tally(
        waits=np.asarray(sim.waits),
        job_s=np.asarray(sim.jobs),
        cold_jobs=sim.cold_jobs,
        cold_starts=sim.cold_starts,
        span_s=span,
        billed_flex_s=sim.billed_flex,
        billed_active_s=endpoint.active * math.ceil(span - ROUNDING_SLACK),
        busy_flex_s=sim.busy_flex,
        busy_active_s=sim.busy_active,
        samples=np.asarray(samples, dtype=float).reshape(-1, 5),
    )
