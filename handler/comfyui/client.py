"""The ComfyUI client: HTTP for commands and results, a websocket for progress.

Every call has a deadline. The websocket is opened *before* the prompt is
submitted so that no event can be missed; ``follow`` (handler/comfyui/follow.py)
then reads it until the prompt finished.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote

import requests
import websocket

from handler.comfyui.events import Completion, validation_error
from handler.comfyui.follow import Follower, ProgressCallback
from handler.deadline import Deadline
from handler.errors import AlphaError, ComfyGone, ComfyUnavailable, ComfyUnresponsive, JobTimeout

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 64 * 2**20
CANCEL_TIMEOUT_S = 2.0
# How often wait_until_ended asks whether a cancelled prompt has left the queue.
SETTLE_POLL_S = 0.05

__all__ = ["ComfyClient", "Completion", "ProgressCallback"]


class ComfyClient:
    def __init__(self, base_url: str, *, http_timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url[len("http") :] + "/ws"
        self.http_timeout_s = http_timeout_s
        self.session = requests.Session()
        self._lock = threading.Lock()
        self._pending_cancels: set[str] = set()

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
            raise ComfyUnresponsive(f"ComfyUI did not answer {method} {path} within {timeout:.1f} s") from None
        except requests.ConnectionError:
            raise ComfyGone(f"ComfyUI at {self.base_url} refused the connection ({method} {path})") from None

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
        if response.status_code == 200 and body.get("node_errors"):
            # ComfyUI queues a graph whose other outputs are valid and reports the broken ones; we want all
            # of it or nothing, so the half that was queued goes again.
            if body.get("prompt_id"):
                self.cancel(str(body["prompt_id"]))
            raise validation_error(body)
        if response.status_code == 400:
            raise validation_error(body)
        if response.status_code != 200 or "prompt_id" not in body:
            raise ComfyUnavailable(f"ComfyUI answered POST /prompt with HTTP {response.status_code}")
        return str(body["prompt_id"])

    def upload_image(self, filename: str, data: bytes, deadline: Deadline) -> str:
        """Put an input image into ComfyUI's input folder through its upload API; returns the name ComfyUI
        stored it under, which a LoadImage node takes. ``overwrite`` keeps the name as given: ComfyUI would
        otherwise rename a clash, and the job could not find its file to remove it."""
        files = {"image": (filename, data, "image/png")}
        form = {"type": "input", "overwrite": "true"}
        response = self._http("POST", "/upload/image", deadline, files=files, data=form)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("name") != filename:
            raise ComfyUnavailable(f"ComfyUI answered POST /upload/image with HTTP {response.status_code}")
        return filename

    def history(self, prompt_id: str, deadline: Deadline) -> dict[str, Any] | None:
        entry = self._json("GET", f"/history/{prompt_id}", deadline).get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def view(self, image: dict[str, Any], deadline: Deadline) -> bytes:
        params = {k: image.get(k, "") for k in ("filename", "subfolder", "type")}
        response = self._http("GET", "/view", deadline, params=params, stream=True)
        with response:
            if response.status_code != 200:
                raise ComfyUnavailable(
                    f"ComfyUI answered GET /view for {params['filename']} with HTTP {response.status_code}"
                )
            data = response.raw.read(MAX_IMAGE_BYTES + 1, decode_content=True)
        if len(data) > MAX_IMAGE_BYTES:
            raise ComfyUnavailable(f"image {params['filename']} is larger than {MAX_IMAGE_BYTES} bytes")
        return bytes(data)

    def cancel(self, prompt_id: str) -> bool:
        """Drop the prompt from the queue and interrupt it if it runs; best effort, short timeouts. If ComfyUI
        does not answer (hung, say), the next job tries again first (``retry_cancels``). True when ComfyUI
        took both requests."""
        for path, body in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                response = self.session.post(
                    self.base_url + path, json=body, timeout=min(CANCEL_TIMEOUT_S, self.http_timeout_s)
                )
                response.close()
            except requests.RequestException as exc:
                log.warning("could not %s prompt %s: %s", path.strip("/"), prompt_id, exc)
                with self._lock:
                    self._pending_cancels.add(prompt_id)
                return False
        log.info("prompt %s dequeued and interrupted", prompt_id)
        return True

    def active(self, deadline: Deadline) -> set[str]:
        """The prompts ComfyUI runs or holds in its queue. A prompt leaves it only after its last node ran, so
        a prompt not listed writes no more files."""
        body = self._json("GET", "/queue", deadline)
        entries = [*(body.get("queue_running") or []), *(body.get("queue_pending") or [])]
        return {str(entry[1]) for entry in entries if isinstance(entry, list) and len(entry) > 1}

    def wait_until_ended(self, prompt_id: str, seconds: float) -> bool:
        """Whether the prompt left ComfyUI's queue within ``seconds``. An interrupt stops a prompt only between
        nodes: one that already runs (the save node, say) still finishes, and may write its file."""
        deadline = Deadline(seconds)
        while True:
            try:
                if prompt_id not in self.active(deadline):
                    return True
            except ComfyGone:
                return True  # ComfyUI died: nothing writes any more
            except AlphaError:
                return False  # it does not answer in time: hung, or the wait is over
            if deadline.expired():
                return False
            time.sleep(min(SETTLE_POLL_S, deadline.remaining()))

    def retry_cancels(self) -> None:
        """Cancel what an earlier job could not (ComfyUI was hung then), before the next job queues behind it."""
        with self._lock:
            pending, self._pending_cancels = self._pending_cancels, set()
        for prompt_id in sorted(pending):
            self.cancel(prompt_id)

    # --- websocket --------------------------------------------------------------------
    @staticmethod
    def new_client_id() -> str:
        """One per job: ComfyUI keeps one socket per client id, so jobs must not share one."""
        return uuid.uuid4().hex

    def connect(self, client_id: str, deadline: Deadline) -> websocket.WebSocket:
        try:
            return websocket.create_connection(
                f"{self.ws_url}?clientId={client_id}", timeout=deadline.cap(self.http_timeout_s)
            )
        except ConnectionRefusedError:
            raise ComfyGone(f"cannot open ComfyUI's websocket: nothing listens at {self.ws_url}") from None
        except (OSError, websocket.WebSocketException) as exc:
            if deadline.expired():
                raise JobTimeout(f"deadline of {deadline.seconds:.0f} s passed opening the websocket") from None
            raise ComfyUnresponsive(f"cannot open ComfyUI's websocket: {exc}") from None

    def follow(
        self,
        ws: websocket.WebSocket,
        client_id: str,
        prompt_id: str,
        deadline: Deadline,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[Completion, websocket.WebSocket]:
        """Wait until the prompt finished; returns the completion and the (possibly new) socket.

        Every TICK_S it looks at ``cancel`` and the deadline. After SILENCE_S of silence it reads /history
        (the completion may have happened unseen) and pings; a ping unanswered for PONG_TIMEOUT_S means a
        dead connection, which is replaced like a closed one, and /history read again."""
        return Follower(self, ws, client_id, prompt_id, deadline, on_progress=on_progress, cancel=cancel).run()
