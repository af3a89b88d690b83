"""The ComfyUI client: HTTP for commands and results, a websocket for progress.

Every call has a deadline. The websocket is opened *before* the prompt is
submitted so that no event can be missed, and ``/history`` is the source of
truth: it is read when the socket reports completion, after a reconnect, and
whenever the socket stays silent, so a completion is never lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import websocket

from handler.deadline import Deadline
from handler.errors import ComfyUnavailable, ExecutionError, JobTimeout

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 64 * 2**20
# How long the socket may stay silent before /history is consulted and a ping sent.
SILENCE_S = 5.0
RECONNECT_BACKOFF_S = (0.25, 0.5, 1.0, 2.0)
MAX_MESSAGE_CHARS = 500

ProgressCallback = Callable[[int, int], None]


def _short(value: Any) -> str:
    text = str(value).strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."


def execution_error(data: dict[str, Any]) -> ExecutionError:
    """From an ``execution_error`` event; never copies current_inputs or the traceback."""
    node_id, node_type = data.get("node_id"), data.get("node_type")
    exc_type = data.get("exception_type")
    return ExecutionError(f"node {node_id} ({node_type}) failed: {exc_type}: {_short(data.get('exception_message'))}",
                          node_id=None if node_id is None else str(node_id), node_type=node_type,
                          exception_type=exc_type)


def validation_error(body: dict[str, Any]) -> ExecutionError:
    """From /prompt's ``node_errors`` (HTTP 400, or a 200 that still lists errors)."""
    for node_id, entry in (body.get("node_errors") or {}).items():
        errors = entry.get("errors") or [{}]
        first = errors[0]
        detail = ": ".join(_short(x) for x in (first.get("message"), first.get("details")) if x)
        return ExecutionError(f"ComfyUI rejected the workflow: node {node_id} ({entry.get('class_type')}): {detail}",
                              node_id=str(node_id), node_type=entry.get("class_type"),
                              exception_type=first.get("type"))
    error = body.get("error") or {}
    message = error.get("message") if isinstance(error, dict) else error
    return ExecutionError(f"ComfyUI rejected the workflow: {_short(message)}")


@dataclass
class Completion:
    """What following one prompt learned, with ComfyUI's own timestamps (ms)."""

    prompt_id: str
    outputs: dict[str, Any]
    started_ms: int | None = None
    finished_ms: int | None = None
    reconnects: int = 0

    @property
    def execution_ms(self) -> int | None:
        if self.started_ms is None or self.finished_ms is None:
            return None
        return self.finished_ms - self.started_ms


def raise_for_failure(kind: str, data: dict[str, Any], prompt_id: str) -> None:
    """Raise for an ``execution_error``/``execution_interrupted`` event (websocket or history)."""
    if kind == "execution_error":
        raise execution_error(data)
    if kind == "execution_interrupted":
        raise ExecutionError(f"prompt {prompt_id} was interrupted at node {data.get('node_id')}",
                             node_id=data.get("node_id"), node_type=data.get("node_type"))


def completion_from_history(prompt_id: str, entry: dict[str, Any]) -> Completion | None:
    """A finished history entry as a Completion; raises for a failed one; None if unfinished."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    stamps = {name: data.get("timestamp") for name, data in messages if isinstance(data, dict)}
    for name, data in messages:
        raise_for_failure(name, data, prompt_id)
    if not status.get("completed"):
        return None
    return Completion(prompt_id, entry.get("outputs") or {}, stamps.get("execution_start"),
                      stamps.get("execution_success"))


class ComfyClient:
    def __init__(self, base_url: str, *, http_timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url[len("http"):] + "/ws"
        self.http_timeout_s = http_timeout_s
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    # --- HTTP -------------------------------------------------------------------------
    def _http(self, method: str, path: str, deadline: Deadline | None = None, **kwargs: Any) -> requests.Response:
        timeout = deadline.cap(self.http_timeout_s) if deadline else self.http_timeout_s
        try:
            return self.session.request(method, self.base_url + path, timeout=timeout, **kwargs)
        except requests.Timeout:
            if deadline is not None and deadline.expired():
                raise JobTimeout(f"deadline of {deadline.seconds:.0f} s passed during {method} {path}") from None
            raise ComfyUnavailable(f"ComfyUI did not answer {method} {path} within {timeout:.1f} s") from None
        except requests.ConnectionError:
            raise ComfyUnavailable(f"ComfyUI at {self.base_url} refused the connection ({method} {path})") from None

    def _json(self, method: str, path: str, deadline: Deadline | None = None, **kwargs: Any) -> Any:
        response = self._http(method, path, deadline, **kwargs)
        if response.status_code != 200:
            raise ComfyUnavailable(f"ComfyUI answered {method} {path} with HTTP {response.status_code}")
        return response.json()

    def system_stats(self, deadline: Deadline | None = None) -> dict[str, Any]:
        stats: dict[str, Any] = self._json("GET", "/system_stats", deadline)
        return stats

    def object_info(self, class_type: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        """A node class's definition (inputs, combo options), or None if ComfyUI does not have it."""
        info = self._json("GET", f"/object_info/{quote(class_type, safe='')}", deadline)
        entry = info.get(class_type) if isinstance(info, dict) else None
        return entry if isinstance(entry, dict) else None

    def all_object_info(self, deadline: Deadline | None = None) -> dict[str, Any]:
        """Every node class's definition, by class name."""
        info = self._json("GET", "/object_info", deadline)
        if not isinstance(info, dict):
            raise ComfyUnavailable("ComfyUI answered GET /object_info with something other than an object")
        return info

    def has_node(self, class_type: str, deadline: Deadline | None = None) -> bool:
        return self.object_info(class_type, deadline) is not None

    def model_files(self, folder: str, deadline: Deadline | None = None) -> list[str] | None:
        """File names ComfyUI finds in a model folder (all its search paths), or None for an unknown folder."""
        response = self._http("GET", f"/models/{quote(folder, safe='')}", deadline)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ComfyUnavailable(f"ComfyUI answered GET /models/{folder} with HTTP {response.status_code}")
        files = response.json()
        return [str(f) for f in files] if isinstance(files, list) else None

    def submit(self, graph: dict[str, Any], client_id: str, deadline: Deadline) -> str:
        response = self._http("POST", "/prompt", deadline, json={"prompt": graph, "client_id": client_id})
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 400 or (response.status_code == 200 and body.get("node_errors")):
            raise validation_error(body)
        if response.status_code != 200 or "prompt_id" not in body:
            raise ComfyUnavailable(f"ComfyUI answered POST /prompt with HTTP {response.status_code}")
        return str(body["prompt_id"])

    def history(self, prompt_id: str, deadline: Deadline) -> dict[str, Any] | None:
        entry = self._json("GET", f"/history/{prompt_id}", deadline).get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def view(self, image: dict[str, Any], deadline: Deadline) -> bytes:
        params = {k: image.get(k, "") for k in ("filename", "subfolder", "type")}
        response = self._http("GET", "/view", deadline, params=params, stream=True)
        with response:
            if response.status_code != 200:
                raise ComfyUnavailable(f"ComfyUI answered GET /view for {params['filename']} with "
                                       f"HTTP {response.status_code}")
            data = response.raw.read(MAX_IMAGE_BYTES + 1, decode_content=True)
        if len(data) > MAX_IMAGE_BYTES:
            raise ComfyUnavailable(f"image {params['filename']} is larger than {MAX_IMAGE_BYTES} bytes")
        return bytes(data)

    def cancel(self, prompt_id: str) -> None:
        """Interrupt the prompt if it runs and drop it from the queue; best effort, short timeouts."""
        for path, body in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                self.session.post(self.base_url + path, json=body, timeout=min(5.0, self.http_timeout_s))
            except requests.RequestException as exc:
                log.warning("could not %s prompt %s: %s", path.strip("/"), prompt_id, exc)

    # --- websocket --------------------------------------------------------------------
    @staticmethod
    def new_client_id() -> str:
        """One per job: ComfyUI keeps one socket per client id, so jobs must not share one."""
        return uuid.uuid4().hex

    def connect(self, client_id: str, deadline: Deadline) -> websocket.WebSocket:
        try:
            return websocket.create_connection(f"{self.ws_url}?clientId={client_id}",
                                               timeout=deadline.cap(self.http_timeout_s))
        except (OSError, websocket.WebSocketException) as exc:
            if deadline.expired():
                raise JobTimeout(f"deadline of {deadline.seconds:.0f} s passed opening the websocket") from None
            raise ComfyUnavailable(f"cannot open ComfyUI's websocket: {exc}") from None

    def _reconnect(self, client_id: str, deadline: Deadline) -> websocket.WebSocket:
        last: Exception | None = None
        for pause in RECONNECT_BACKOFF_S:
            time.sleep(min(pause, deadline.remaining()))
            try:
                return self.connect(client_id, deadline)
            except ComfyUnavailable as exc:
                last = exc
        raise ComfyUnavailable(f"ComfyUI's websocket closed and did not come back: {last}")

    def follow(self, ws: websocket.WebSocket, client_id: str, prompt_id: str, deadline: Deadline,
               on_progress: ProgressCallback | None = None) -> tuple[Completion, websocket.WebSocket]:
        """Wait until the prompt finished; returns the completion and the (possibly new) socket."""
        reconnects = 0
        started_ms: int | None = None
        while True:
            if deadline.expired():
                raise JobTimeout(f"deadline of {deadline.seconds:.0f} s passed while prompt {prompt_id} "
                                 "was queued or running")
            try:
                ws.settimeout(deadline.cap(SILENCE_S))
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                done = self._check_history(prompt_id, deadline, reconnects)
                if done:
                    return done, ws
                # A dead peer makes the next recv fail, which reconnects.
                with contextlib.suppress(websocket.WebSocketConnectionClosedException, OSError):
                    ws.ping()
                continue
            except (websocket.WebSocketConnectionClosedException, OSError) as exc:
                log.warning("websocket lost while following prompt %s (%s); reconnecting", prompt_id, exc)
                ws.close()
                ws = self._reconnect(client_id, deadline)
                reconnects += 1
                done = self._check_history(prompt_id, deadline, reconnects)
                if done:
                    return done, ws
                continue
            if not isinstance(frame, str):
                continue  # binary preview frames
            message = json.loads(frame)
            kind, data = message.get("type"), message.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            raise_for_failure(kind, data, prompt_id)
            if kind == "execution_start":
                started_ms = data.get("timestamp")
            elif kind == "progress" and on_progress is not None:
                on_progress(int(data.get("value", 0)), int(data.get("max", 0)))
            elif kind == "executing" and data.get("node") is None:
                # Only now is /history written.
                done = self._check_history(prompt_id, deadline, reconnects)
                if done is None:
                    raise ComfyUnavailable(f"prompt {prompt_id} finished but has no history entry")
                done.started_ms = done.started_ms or started_ms
                return done, ws

    def _check_history(self, prompt_id: str, deadline: Deadline, reconnects: int) -> Completion | None:
        entry = self.history(prompt_id, deadline)
        done = completion_from_history(prompt_id, entry) if entry else None
        if done is not None:
            done.reconnects = reconnects
        return done
