"""A loopback stand-in for RunPod's serverless job API, for tests: RunPod's platform cannot be reached from here.

It follows the protocol as the pinned SDK (runpod 1.12.0) speaks it, read from its source:

- job-take (``rp_job.get_job``): ``GET <RUNPOD_WEBHOOK_GET_JOB>&job_in_progress=0|1``, the SDK having put the
  worker id for ``$ID``. A long-poll: answered with one job ``{"id", "input"}`` (200, application/json), or
  204 when none came within ``hold_s``; a take the worker has closed is handed no job. With concurrency > 1 the
  SDK asks ``/job-take-batch/...&batch_size=N`` and gets a JSON list.
- job-stop (``rp_job.get_stop_signals``): the job-take URL with ``/job-stop/``; a long-poll answered with
  ``{"jobsToStop": [ids]}`` or 204.
- job-done (``rp_http.send_result``): ``POST <RUNPOD_WEBHOOK_POST_OUTPUT>&isStream=false``, ``$RUNPOD_POD_ID``
  and ``$ID`` filled in; the body is JSON sent as ``application/x-www-form-urlencoded``: the result
  (``{"output"}``, ``{"output", "error"}``, plus ``"stopPod": true``), or a progress update
  ``{"status": "IN_PROGRESS", "output"}`` (``rp_progress``). The SDK retries a 5xx (``FibonacciRetry``, 3
  attempts).
- job-stream (``rp_http.stream_result``): the same to ``RUNPOD_WEBHOOK_POST_STREAM``.
- ping (``rp_ping.Heartbeat``): ``GET <RUNPOD_WEBHOOK_PING>?job_id=...&runpod_version=...`` every
  ``RUNPOD_PING_INTERVAL`` ms, only when ``RUNPOD_AI_API_KEY`` and ``RUNPOD_POD_ID`` are set.

Every request is recorded (``Arrival``: monotonic time, kind, job id, body, the status answered), so tests
assert on what RunPod would have received, and in which order. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

from aiohttp import web

from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import ServerThread, child_env, free_port

ENDPOINT = "emulated-endpoint"
POD_ID = "emulated-pod"
API_KEY = "emulator-api-key"
RECEIVED = web.RequestKey("received", float)
# In production mode the SDK's fitness checks open a connection to a public DNS server (8.8.8.8:53, in
# rp_system_fitness) and benchmark the GPU: never from a test.
SAFE_ENV = {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true"}


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it could resolve anywhere
        return False


def production_env(base: dict[str, str], emulator: Emulator) -> dict[str, str]:
    """A worker's whole environment for the SDK's production loop against ``emulator``: the fitness checks off,
    and every URL in it (inherited ones included) on loopback, or an AssertionError."""
    env = {**base, **emulator.worker_env(), **SAFE_ENV}
    urls = {key: value for key, value in env.items() if "://" in value}
    assert urls and all(loopback(url) for url in urls.values()), f"a URL beyond loopback: {urls}"
    return env


def spawn_worker(settings: Settings, emulator: Emulator, out: IO[bytes]) -> subprocess.Popen[bytes]:
    """``python -m handler`` (the SDK's production loop, as adapted) against ``emulator``, in front of an already
    running ComfyUI; its own process group, so its owner can stop the SDK's heartbeat process with it."""
    return subprocess.Popen(
        [sys.executable, "-m", "handler"],
        cwd=REPO,
        env=production_env(child_env(settings), emulator),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@dataclass
class Arrival:
    at: float  # time.monotonic() when the request came in
    kind: str  # take, take-batch, stop-poll, done, progress, stream, ping
    job_id: str | None = None
    body: Any = None
    status: int = 200  # what the emulator answered
    query: dict[str, str] = field(default_factory=dict)
    answered: float = 0.0  # when the emulator answered it (a long-poll: later than ``at``); RunPod's order


class Emulator:
    """The routes above on a free loopback port (``url``). Thread-safe: tests call ``submit``/``stop`` from
    their own thread while the server runs in its own loop."""

    def __init__(self, *, hold_s: float = 2.0, port: int | None = None) -> None:
        self.hold_s = hold_s
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.arrivals: list[Arrival] = []
        self.fail_takes = 0  # answer the next N job-takes with 503
        self.fail_takes_until = 0.0  # answer job-takes with 503 until this time.monotonic()
        self.on_hand_out: Callable[[str], None] | None = None  # called with a job's id just before it is sent
        self.open_takes = 0  # job-take long-polls open now
        self.fail_done = 0  # answer the next N job-done posts of a result with 500
        self.progress_delay_s = 0.0  # RunPod slow to take a progress update: recorded (and answered) this late
        self._lock = threading.Lock()
        self._jobs: list[dict[str, Any]] = []
        self._to_stop: list[str] = []
        self.violations: list[str] = []
        self._server: ServerThread | None = None

    # ---- the worker's environment
    def worker_env(self) -> dict[str, str]:
        base = f"{self.url}/v2/{ENDPOINT}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=emulated",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=emulated",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=emulated",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=emulated",
            "RUNPOD_PING_INTERVAL": "1000",
            "RUNPOD_POD_ID": POD_ID,
            "RUNPOD_AI_API_KEY": API_KEY,
        }

    # ---- what tests do
    def submit(self, job_input: Any, job_id: str) -> str:
        with self._lock:
            self._jobs.append({"id": job_id, "input": job_input})
        return job_id

    def stop(self, job_id: str) -> None:
        with self._lock:
            self._to_stop.append(job_id)

    def of(self, kind: str, job_id: str | None = None) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.kind == kind and (job_id is None or a.job_id == job_id)]

    def results(self, job_id: str) -> list[dict[str, Any]]:
        """The results RunPod accepted for a job (job-done posts answered 200, not progress)."""
        return [a.body for a in self.of("done", job_id) if a.status == 200]

    def wait_result(self, job_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.results(job_id):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result for {job_id} within {timeout:.0f} s")
            time.sleep(0.05)
        return self.results(job_id)[0]

    def wait_for(self, kind: str, timeout: float, after: float = 0.0) -> Arrival:
        deadline = time.monotonic() + timeout
        while True:
            found = [a for a in self.of(kind) if a.at >= after]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind} request within {timeout:.0f} s")
            time.sleep(0.05)

    # ---- the server
    def __enter__(self) -> Emulator:
        app = web.Application(client_max_size=64 * 2**20)
        prefix = f"/v2/{ENDPOINT}"
        app.router.add_get(prefix + "/job-take/{worker}", self._take)
        app.router.add_get(prefix + "/job-take-batch/{worker}", self._take)
        app.router.add_get(prefix + "/job-stop/{worker}", self._stop_poll)
        app.router.add_post(prefix + "/job-done/{worker}/{job}", self._done)
        app.router.add_post(prefix + "/job-stream/{worker}/{job}", self._stream)
        app.router.add_get(prefix + "/ping/{worker}", self._ping)
        self._server = ServerThread(app, port=self.port)
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.__exit__(*exc)

    def _record(
        self, request: web.Request, kind: str, *, job_id: str | None = None, body: Any = None, status: int = 200
    ) -> None:
        received = request.get(RECEIVED, time.monotonic())
        arrival = Arrival(received, kind, job_id, body, status, dict(request.query), time.monotonic())
        with self._lock:
            self.arrivals.append(arrival)

    def _check(self, request: web.Request) -> None:
        """What every request must carry; a miss is kept in ``violations`` (tests assert it stays empty)."""
        request[RECEIVED] = time.monotonic()
        problems = []
        if request.match_info["worker"] != POD_ID:
            problems.append(f"worker id {request.match_info['worker']!r} in {request.path}")
        if request.headers.get("Authorization") != API_KEY:
            problems.append(f"Authorization {request.headers.get('Authorization')!r} on {request.path}")
        route = request.path.split("/")[3]
        if route in ("job-take", "job-take-batch") and "job_in_progress" not in request.query:
            problems.append(f"no job_in_progress on {request.path}")
        if route == "job-done" and request.query.get("isStream") != "false":
            problems.append(f"isStream={request.query.get('isStream')!r} on a job-done post")
        with self._lock:
            self.violations += problems

    async def _take(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        batch = "job-take-batch" in request.path
        kind = "take-batch" if batch else "take"
        with self._lock:
            failing = self.fail_takes > 0 or time.monotonic() < self.fail_takes_until
            self.fail_takes -= int(self.fail_takes > 0)
        if failing:
            self._record(request, kind, status=503)
            return web.Response(status=503, text="emulated outage")
        wanted = int(request.query.get("batch_size", "1"))
        with self._lock:
            self.open_takes += 1
        try:
            jobs = await self._wait(lambda: self._pop_jobs(wanted, request))
        finally:
            with self._lock:
                self.open_takes -= 1
        if not jobs:
            self._record(request, kind, status=204)
            return web.Response(status=204)
        for job in jobs:
            self._record(request, kind, job_id=job["id"], body=job)
            if self.on_hand_out is not None:
                self.on_hand_out(job["id"])
        return web.json_response(jobs if batch else jobs[0])

    def _pop_jobs(self, wanted: int, request: web.Request | None = None) -> list[dict[str, Any]] | None:
        """Up to ``wanted`` jobs; none for a worker that closed its take (a job is never handed to no one)."""
        if request is not None and (request.transport is None or request.transport.is_closing()):
            return None
        with self._lock:
            taken, self._jobs = self._jobs[:wanted], self._jobs[wanted:]
        return taken

    def _pop_stops(self) -> list[str]:
        with self._lock:
            stops, self._to_stop = self._to_stop, []
        return stops

    async def _wait(self, pop: Any) -> Any:
        """A long-poll: what ``pop`` returns once it is not ``[]`` (``None``: the worker is gone), or ``[]`` after
        ``hold_s``."""
        deadline = time.monotonic() + self.hold_s
        while (found := pop()) == [] and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return found

    async def _stop_poll(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        stops = await self._wait(self._pop_stops)
        self._record(request, "stop-poll", body=stops, status=200 if stops else 204)
        if not stops:
            return web.Response(status=204)
        return web.json_response({"jobsToStop": stops})

    async def _done(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        body = json.loads(await request.text())
        job_id = request.match_info["job"]
        if body.get("status") == "IN_PROGRESS":
            await asyncio.sleep(self.progress_delay_s)
            self._record(request, "progress", job_id=job_id, body=body)
            return web.Response(text="ok")
        with self._lock:
            failing = self.fail_done > 0
            self.fail_done -= int(failing)
        self._record(request, "done", job_id=job_id, body=body, status=500 if failing else 200)
        return web.Response(status=500 if failing else 200, text="emulated failure" if failing else "ok")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        self._record(request, "stream", job_id=request.match_info["job"], body=json.loads(await request.text()))
        return web.Response(text="ok")

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        self._record(request, "ping")
        return web.Response(text="ok")
