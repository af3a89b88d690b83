"""What the fault tests watch for, and how long they may wait for it.

Every wait here is for an observed event (a node's start on the job's own socket, an idle queue, a log line),
and every bound is a setting of the code under test (the job deadline, the client's timeouts and backoff, the
cancel's timeout, the settle wait) plus one slack for scheduling, LOAD_SLACK_S. No bound is a guess at how
fast this machine is; the slack only pays for waiting on a busy CPU."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import websocket
from runpod.serverless.modules.rp_job import run_job
from websocket import ABNF

from handler.comfyui.client import CANCEL_TIMEOUT_S, ComfyClient
from handler.comfyui.follow import TICK_S
from handler.deadline import Deadline
from handler.doors.runpod.worker import make_handler
from handler.generate import SETTLE_S, WS_CLOSE_TIMEOUT_S, Generator
from handler.settings import Settings
from handler.workflow.graph import Workflow

# Scheduling on a loaded machine: on 2 cores at a load of about 6 a runnable thread waits for a core a few
# hundred ms at a time, several times along one sequence (a wake-up, an HTTP round trip, a log line, a process
# teardown). Added once to each bound: a quiet machine never waits for it, a hang still overruns it.
LOAD_SLACK_S = 3.0
# How often a wait looks at its condition: a sampling interval, not a bound.
POLL_S = 0.05
# A job's longest tail after its deadline or cancel: it interrupts and dequeues its prompt (two requests of at
# most CANCEL_TIMEOUT_S each), waits up to SETTLE_S for the prompt to end, and closes its socket.
STOP_TAIL_S = 2 * CANCEL_TIMEOUT_S + SETTLE_S + WS_CLOSE_TIMEOUT_S
# From a cancel (a RunPod stop, a departed client) to the log line saying ComfyUI took it: the job looks at its
# cancel event every TICK_S, then both requests must have been answered, each within CANCEL_TIMEOUT_S.
TOLD_WITHIN_S = TICK_S + 2 * CANCEL_TIMEOUT_S + LOAD_SLACK_S


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll until ``condition()`` holds; the seconds it took. Fails naming ``what`` after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds:.1f} s"
        time.sleep(POLL_S)
    return time.monotonic() - started


def job_bound(settings: Settings) -> float:
    """The longest a job may take: its deadline, then its stop tail, plus the slack."""
    return settings.job_timeout_s + STOP_TAIL_S + LOAD_SLACK_S


def queue(client: ComfyClient) -> tuple[list[Any], list[Any]]:
    body = client._json("GET", "/queue")
    return body["queue_running"], body["queue_pending"]


def wait_idle(client: ComfyClient, seconds: float = SETTLE_S + LOAD_SLACK_S) -> float:
    """The seconds until ComfyUI's queue is empty. By default as long as the handler itself gives a cancelled
    prompt to end (SETTLE_S), plus the slack."""
    return wait_for(lambda: queue(client) == ([], []), seconds, "ComfyUI's queue emptied")


def status_of(client: ComfyClient, prompt_id: str) -> dict[str, Any]:
    entry = client._json("GET", f"/history/{prompt_id}").get(prompt_id) or {}
    status: dict[str, Any] = entry.get("status") or {}
    return status


def leftovers(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.effective_output_dir.glob("alpha_*"))


# Watched(node=PROMPT_START): the prompt has begun to run, whatever its first node (the `execution_start` event).
PROMPT_START = "execution_start"


class Watched(ComfyClient):
    """The real client, which also tells when ComfyUI starts running ``node`` (by default the sampler: sampling
    has begun; PROMPT_START: the prompt's start): its event, read from each socket the client opens (ComfyUI sends a
    prompt's events only to the client that queued it). ``strike`` is called then, in the job's own thread."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        *,
        node: str | None = None,
        strike: Callable[[], None] | None = None,
        http_timeout_s: float | None = None,
    ) -> None:
        super().__init__(url, http_timeout_s=settings.http_timeout_s if http_timeout_s is None else http_timeout_s)
        self.node = node or Workflow.load(settings.workflow).node("alpha:sampler")
        self.strike = strike or (lambda: None)
        self.reached = threading.Event()
        self.struck = 0
        self.prompt_id = ""

    @classmethod
    def of(cls, settings: Settings, node: str | None = None) -> Watched:
        return cls(settings.comfyui_url, settings, node=node)

    def connect(self, client_id: str, deadline: Deadline) -> websocket.WebSocket:
        ws = super().connect(client_id, deadline)
        receive = ws.recv_data

        def recv_data(control_frame: bool = False) -> tuple[int, Any]:
            opcode, frame = receive(control_frame=control_frame)
            if opcode == ABNF.OPCODE_TEXT:
                message = json.loads(frame)
                data = message.get("data") or {}
                kind = message.get("type")
                if (kind == "executing" and data.get("node") == self.node) or kind == self.node == PROMPT_START:
                    self.prompt_id, self.struck = str(data.get("prompt_id")), self.struck + 1
                    self.strike()
                    self.reached.set()
            return opcode, frame

        ws.recv_data = recv_data  # type: ignore[method-assign]  # a spy on the real socket
        return ws

    def wait_reached(self, seconds: float) -> str:
        """The prompt id once ComfyUI runs the node. ``seconds`` is the job's deadline (plus slack): a job whose
        prompt has not reached the node by then has failed anyway."""
        assert self.reached.wait(seconds), f"ComfyUI did not reach node {self.node} within {seconds:.1f} s"
        return self.prompt_id


class Job:
    """One RunPod job through RunPod's own run_job and our handler, in a thread; timed (monotonic)."""

    def __init__(self, generator: Generator, job_input: dict[str, Any]) -> None:
        self.settings = generator.settings
        self.handler = make_handler(generator)
        self.job = {"id": f"fault-{uuid.uuid4().hex[:8]}", "input": job_input}
        self.result: dict[str, Any] = {}
        self.started = self.finished = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = asyncio.run(run_job(self.handler, self.job))
        self.finished = time.monotonic()

    def start(self) -> Job:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def wait(self) -> dict[str, Any]:
        """The job's result; a job still running past its deadline and stop tail (``job_bound``) hung."""
        bound = job_bound(self.settings)
        self.thread.join(max(0.0, self.started + bound - time.monotonic()))
        assert not self.thread.is_alive(), f"the job hung: still running {bound:.1f} s after it started"
        return self.result
