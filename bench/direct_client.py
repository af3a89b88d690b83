"""The baseline: a minimal direct websocket client for ComfyUI, the least any program must do to get an
image out of it. One socket and one HTTP session for all its jobs; per job: POST /prompt, read events
until the prompt's ``executing: null``, GET /history, GET /view. It validates nothing and returns the
PNG bytes as ComfyUI saved them.

It also times each node from its ``executing`` events (the per-node table) and counts binary frames
(previews: there should be none).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket


@dataclass
class DirectRun:
    png: bytes
    wall_s: float
    execution_s: float
    # Node id -> seconds from its `executing` event to the next one (cached nodes do not appear).
    node_s: dict[str, float] = field(default_factory=dict)
    binary_frames: int = 0


def execution_seconds(entry: dict[str, Any]) -> float:
    """ComfyUI's own execution time of a prompt: execution_success minus execution_start, from /history."""
    stamps = {kind: data.get("timestamp") for kind, data in entry.get("status", {}).get("messages", [])}
    start, end = stamps.get("execution_start"), stamps.get("execution_success")
    if not isinstance(start, int) or not isinstance(end, int):
        raise RuntimeError(f"no execution timestamps in the history entry: {sorted(stamps)}")
    return (end - start) / 1000


class DirectClient:
    def __init__(self, base_url: str, *, timeout_s: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.client_id = uuid.uuid4().hex
        self.http = requests.Session()
        self.ws = websocket.create_connection(
            "ws" + self.base_url[len("http") :] + f"/ws?clientId={self.client_id}", timeout=timeout_s
        )

    def close(self) -> None:
        self.ws.close()
        self.http.close()

    def __enter__(self) -> DirectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, graph: dict[str, Any]) -> DirectRun:
        started = time.perf_counter()
        deadline = started + self.timeout_s
        response = self.http.post(
            f"{self.base_url}/prompt", json={"prompt": graph, "client_id": self.client_id}, timeout=self.timeout_s
        )
        response.raise_for_status()
        prompt_id = response.json()["prompt_id"]
        node_s: dict[str, float] = {}
        current: tuple[str, float] | None = None
        binary = 0
        while True:
            self.ws.settimeout(max(0.01, deadline - time.perf_counter()))
            frame = self.ws.recv()  # raises WebSocketTimeoutException at the deadline
            now = time.perf_counter()
            if isinstance(frame, bytes):
                binary += 1
                continue
            message = json.loads(frame)
            data = message.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            if message.get("type") == "execution_error":
                raise RuntimeError(f"node {data.get('node_id')} failed: {data.get('exception_message')}")
            if message.get("type") == "executing":
                if current is not None:
                    node_s[current[0]] = now - current[1]
                if data.get("node") is None:
                    break
                current = (str(data["node"]), now)
        entry = self.http.get(f"{self.base_url}/history/{prompt_id}", timeout=self.timeout_s).json()[prompt_id]
        images = [image for output in entry["outputs"].values() for image in output.get("images", [])]
        if len(images) != 1:
            raise RuntimeError(f"expected one image, got {len(images)}")
        view = self.http.get(f"{self.base_url}/view", params=images[0], timeout=self.timeout_s)
        view.raise_for_status()
        return DirectRun(view.content, time.perf_counter() - started, execution_seconds(entry), node_s, binary)
