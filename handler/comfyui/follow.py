"""Following one prompt over ComfyUI's websocket (``ComfyClient.follow``) until it finished.

A socket that stayed up the whole prompt saw every event, so its ``executed`` outputs and
``execution_success`` complete the job; otherwise ``/history`` is the source of truth: it is read after a
reconnect and whenever the socket stays silent, so a completion is never lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import websocket
from websocket import ABNF

from handler.comfyui.events import Completion, completion_from_history, raise_for_failure
from handler.deadline import Deadline
from handler.errors import ComfyGone, ComfyUnavailable, ComfyUnresponsive, JobCancelled, JobTimeout

# The client's name: these are its lines (ComfyClient.follow), whichever module holds the code.
log = logging.getLogger("handler.comfyui.client")

# How often the follower wakes up to look at the cancel event and the deadline.
TICK_S = 0.5
# How long the socket may stay silent before /history is consulted and a ping sent...
SILENCE_S = 5.0
# ...and how long that ping may go unanswered before the connection counts as dead.
PONG_TIMEOUT_S = 5.0
RECONNECT_BACKOFF_S = (0.25, 0.5, 1.0, 2.0)

# A `progress` event: step, of how many steps, and the node id that reports it.
ProgressCallback = Callable[[int, int, str], None]


class Client(Protocol):
    """What following needs of ComfyClient (which imports this module, so it is not imported here)."""

    def connect(self, client_id: str, deadline: Deadline) -> websocket.WebSocket: ...

    def history(self, prompt_id: str, deadline: Deadline) -> dict[str, Any] | None: ...


class _SocketDead(Exception):
    """The websocket closed, failed or went unanswered (already logged): it is to be replaced."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Follower:
    """One prompt followed over the websocket (``ComfyClient.follow``): what its events said so far, when the
    socket was last heard, and the steps of one tick."""

    def __init__(
        self,
        client: Client,
        ws: websocket.WebSocket,
        client_id: str,
        prompt_id: str,
        deadline: Deadline,
        *,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        self.client, self.ws, self.client_id, self.prompt_id = client, ws, client_id, prompt_id
        self.deadline, self.on_progress, self.cancel = deadline, on_progress, cancel
        self.reconnects = 0
        self.started_ms: int | None = None
        self.outputs: dict[str, Any] = {}  # from `executed` events, by node id
        self.heard = time.monotonic()
        self.pinged: float | None = None

    def run(self) -> tuple[Completion, websocket.WebSocket]:
        """Tick until the prompt finished: cancel and deadline first, then one frame or one silent tick; a
        dead socket is replaced (and /history read) on the way."""
        given = self.ws
        try:
            while True:
                self._stop_if_asked()
                try:
                    done = self._tick()
                except _SocketDead as dead:
                    done = self._replace(dead.reason)
                if done is not None:
                    return done, self.ws
        except BaseException:
            # The caller closes the socket it gave; one opened here would be left to the garbage collector.
            if self.ws is not given:
                self.ws.shutdown()  # type: ignore[no-untyped-call]  # ComfyUI may be frozen: no handshake
            raise

    def _stop_if_asked(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise JobCancelled(f"prompt {self.prompt_id} was cancelled")
        if self.deadline.expired():
            raise JobTimeout(
                f"deadline of {self.deadline.seconds:.0f} s passed while prompt {self.prompt_id} was queued or running"
            )

    def _tick(self) -> Completion | None:
        """One frame handled, or one silent tick; the completion if that finished the prompt."""
        frame = self._receive()
        if frame is None:
            return self._on_silence()
        self.heard, self.pinged = time.monotonic(), None
        opcode, data = frame
        if opcode != ABNF.OPCODE_TEXT:
            return None  # pongs, pings, binary preview frames
        return self._on_event(json.loads(data))

    def _receive(self) -> tuple[int, bytes] | None:
        """The next frame, or None if none came within a tick."""
        try:
            self.ws.settimeout(self.deadline.cap(TICK_S))
            opcode, frame = self.ws.recv_data(control_frame=True)
            if opcode == ABNF.OPCODE_CLOSE:
                raise websocket.WebSocketConnectionClosedException("ComfyUI closed the websocket")
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketConnectionClosedException, OSError) as exc:
            log.warning("websocket lost while following prompt %s (%s); reconnecting", self.prompt_id, exc)
            raise _SocketDead(str(exc)) from None
        return opcode, frame

    def _on_silence(self) -> Completion | None:
        """After SILENCE_S: /history (the completion may have gone unseen), then a ping. A ping unanswered for
        PONG_TIMEOUT_S: the socket is dead."""
        now = time.monotonic()
        if self.pinged is None:
            if now - self.heard < SILENCE_S:
                return None
            done = self._check_history()
            if done:
                return done
            with contextlib.suppress(websocket.WebSocketException, OSError):
                self.ws.ping()  # a closed socket fails the next recv, which reconnects
            self.pinged = now
            return None
        if now - self.pinged < PONG_TIMEOUT_S:
            return None
        log.warning(
            "websocket silent for %.0f s and a ping unanswered while following prompt %s; reconnecting",
            now - self.heard,
            self.prompt_id,
        )
        raise _SocketDead("no pong")

    def _on_event(self, message: Any) -> Completion | None:
        """One of this prompt's events: a failure raises; start, outputs and progress are noted; the end
        completes."""
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") != self.prompt_id:
            return None
        raise_for_failure(kind, data, self.prompt_id)
        if kind == "execution_start":
            self.started_ms = data.get("timestamp")
        elif kind == "executed" and isinstance(data.get("output"), dict):
            self.outputs[str(data.get("node"))] = data["output"]
        elif kind == "execution_success" and self.outputs and not self.reconnects:
            # Done, and this socket saw every event: no need to wait for `executing: null` or read
            # /history. Right after that message ComfyUI runs gc.collect() every 10 s, which stalls
            # its HTTP server for a few hundred ms (bench/overhead.py); this misses the stall.
            return Completion(self.prompt_id, self.outputs, self.started_ms, data.get("timestamp"))
        elif kind == "progress" and self.on_progress is not None:
            self.on_progress(int(data.get("value", 0)), int(data.get("max", 0)), str(data.get("node")))
        elif kind == "executing" and data.get("node") is None:
            return self._finished()
        return None

    def _finished(self) -> Completion:
        """`executing: null`: only now is /history written."""
        done = self._check_history()
        if done is None:
            raise ComfyUnavailable(f"prompt {self.prompt_id} finished but has no history entry")
        done.started_ms = done.started_ms or self.started_ms
        return done

    def _replace(self, reason: str) -> Completion | None:
        """A new socket for a dead one, then /history: the completion may have happened in between."""
        self.ws.shutdown()  # type: ignore[no-untyped-call]  # no closing handshake: the peer may be frozen
        log.debug("replacing the websocket: %s", reason)
        self.ws = self._reconnect()
        self.reconnects += 1
        self.heard, self.pinged = time.monotonic(), None
        return self._check_history()

    def _reconnect(self) -> websocket.WebSocket:
        """A new socket with bounded backoff. Refused connections mean ComfyUI died: give up after a few.
        Anything else (a hung ComfyUI, a flaky link) is retried until the deadline."""
        refused = 0
        pauses = itertools.chain(RECONNECT_BACKOFF_S, itertools.repeat(RECONNECT_BACKOFF_S[-1]))
        while True:
            time.sleep(min(next(pauses), self.deadline.remaining()))
            if self.deadline.expired():
                raise JobTimeout(f"deadline of {self.deadline.seconds:.0f} s passed while reconnecting the websocket")
            try:
                return self.client.connect(self.client_id, self.deadline)
            except ComfyGone as exc:
                refused += 1
                if refused >= len(RECONNECT_BACKOFF_S):
                    raise ComfyGone(f"ComfyUI's websocket closed and ComfyUI is gone: {exc.message}") from None
            except ComfyUnresponsive as exc:
                log.info("websocket reconnect failed (%s); retrying", exc.message)

    def _check_history(self) -> Completion | None:
        """The finished prompt from /history, or None. A ComfyUI that does not answer in time is no news: the
        deadline decides, not the HTTP timeout."""
        try:
            entry = self.client.history(self.prompt_id, self.deadline)
        except ComfyUnresponsive as exc:
            log.warning("/history did not answer while following prompt %s: %s", self.prompt_id, exc.message)
            return None
        done = completion_from_history(self.prompt_id, entry) if entry else None
        if done is not None:
            done.reconnects = self.reconnects
        return done
