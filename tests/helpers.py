"""Small helpers shared by the test layers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from aiohttp import web
from PIL import Image

from handler.comfyui.client import ComfyClient
from handler.comfyui.process import ComfyProcess
from handler.errors import AlphaError, statuses
from handler.paths import REPO
from handler.settings import Settings


@contextlib.contextmanager
def no_file_left_in(settings: Settings) -> Iterator[None]:
    """ComfyUI's output and input folders hold the same files after the block as before: every job, failed or
    not, removes what it wrote and uploaded."""
    folders = (settings.effective_output_dir, settings.input_dir)
    before = {p for folder in folders for p in folder.rglob("*") if p.is_file()}
    yield
    after = {p for folder in folders for p in folder.rglob("*") if p.is_file()}
    assert after == before, "a job left a file in ComfyUI's output or input folder"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for a child process that must see exactly these settings."""
    return {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def rgba(data: bytes) -> np.ndarray:
    return np.asarray(decode_png(data).convert("RGBA"), dtype=np.int16)


def post_json(url: str, body: Any, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def assert_success_contract(output: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The RunPod success body; returns the PNG bytes and info."""
    assert output["status"] == "success"
    assert set(output) == {"status", "url", "image_base64", "filename", "info"}
    assert output["url"] == "data:image/png;base64," + output["image_base64"]
    png = base64.b64decode(output["image_base64"], validate=True)
    image = decode_png(png)
    assert image.format == "PNG" and image.mode == "RGBA"
    assert not image.info.get("prompt") and not image.info.get("workflow"), "ComfyUI runs with --disable-metadata"
    alpha = np.asarray(image)[..., 3]
    assert alpha.min() < alpha.max(), "alpha must not be constant"
    assert output["filename"].startswith("alpha_") and output["filename"].endswith(".png")
    return png, output["info"]


ERROR_KEYS = {"status", "error", "code", "message", "field"}
EXECUTION_KEYS = {"node_id", "node_type", "exception_type"}


def _refresh_codes() -> set[str]:
    """The codes whose errors ask RunPod for a fresh worker (``refresh_worker``)."""
    codes, todo = set(), [AlphaError]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.refresh_worker:
            codes.add(cls.code)
    return codes


def assert_error(body: Any, code: str, field: str | None, *, words: str | None = None) -> dict[str, Any]:
    """The one error shape (README, "Failure"; ``handler.errors.error_body``), whichever door produced it.
    ``body`` is one of:

    - the body itself (the alpha API's JSON): exactly ``{"status": "error", "error": "<code>: <message>", "code",
      "message", "field"}``, plus ``node_id``, ``node_type`` and ``exception_type`` exactly for ``execution_error``;
    - a RunPod job result (``run_job``): RunPod lifted ``error`` out of the handler's output and turned
      ``refresh_worker`` into ``stopPod``; put back together it is the body above, and ``stopPod`` is there
      exactly for the codes that refresh the worker;
    - a ``/runsync`` reply of a failed job (RunPod's local API keeps only ``{"id", "status": "FAILED",
      "error"}``): the code, the words, and the field quoted in the message.

    ``words``: text the message must contain. Returns the body (put back together for a job result)."""
    assert code in statuses(), f"{code!r} is not an error code a door answers with"
    assert isinstance(body, dict), f"an error body is a JSON object, got {body!r:.300}"
    if "output" in body:
        return _assert_job_error(body, code, field, words)
    if body.get("status") == "FAILED":
        _assert_runsync_error(body, code, field, words)
        return body
    expected = ERROR_KEYS | (EXECUTION_KEYS if code == "execution_error" else set())
    assert set(body) == expected, f"error body keys {sorted(body)}, expected {sorted(expected)}: {body!r:.300}"
    assert (body["status"], body["code"], body["field"]) == ("error", code, field), body
    message = body["message"]
    assert isinstance(message, str) and message and body["error"] == f"{code}: {message}", body
    assert all(body[key] is None or isinstance(body[key], str) for key in expected & EXECUTION_KEYS), body
    assert words is None or words in message, f"{words!r} not in {message!r}"
    return body


def _assert_job_error(result: dict[str, Any], code: str, field: str | None, words: str | None) -> dict[str, Any]:
    assert set(result) <= {"output", "error", "stopPod"} and "error" in result, f"a failed job: {result!r:.300}"
    output = result["output"]
    assert isinstance(output, dict) and not {"error", "refresh_worker"} & set(output), f"RunPod lifts them: {output}"
    assert ("stopPod" in result) == (code in _refresh_codes()), f"stopPod for {code}: {result.get('stopPod')}"
    assert result.get("stopPod", True) is True, result
    return assert_error({**output, "error": result["error"]}, code, field, words=words)


def _assert_runsync_error(body: dict[str, Any], code: str, field: str | None, words: str | None) -> None:
    assert set(body) == {"id", "status", "error"}, f"a FAILED /runsync reply: {body!r:.300}"
    error = body["error"]
    assert isinstance(error, str) and error.startswith(f"{code}: ") and error != f"{code}: ", body
    message = error.removeprefix(f"{code}: ")
    assert field is None or f"'{field}'" in message, f"the message does not name '{field}': {message!r}"
    assert words is None or words in message, f"{words!r} not in {message!r}"


@dataclass
class RunningComfy:
    settings: Settings
    process: ComfyProcess
    log_path: Path
    client: ComfyClient

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def history(self, settle_s: float = 30.0) -> dict[str, Any]:
        """ComfyUI's history once its queue is empty. A job returns at the prompt's ``execution_success`` event,
        which ComfyUI sends a moment before it writes the prompt into its history (``PromptQueue.task_done``,
        which also takes it off the queue): read at once, the last prompt may be missing."""
        deadline = time.monotonic() + settle_s
        while (queue := self.client._json("GET", "/queue"))["queue_running"] or queue["queue_pending"]:
            assert time.monotonic() < deadline, f"ComfyUI's queue not empty after {settle_s:.0f} s: {queue}"
            time.sleep(0.02)
        history: dict[str, Any] = self.client._json("GET", "/history")
        return history

    def history_size(self) -> int:
        return len(self.history())


class ServerThread:
    """A real aiohttp server for an app, on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: web.Application, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        from handler.doors.alpha.protocol import AlphaRunner  # served as in production

        self.runner = AlphaRunner(app, access_log=None)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> Reply:
    """One request with the standard library; never raises for an HTTP status."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


def raw_get(port: int, target: bytes, timeout: float = 10) -> Reply:
    """A GET whose request target goes on the wire byte for byte: no client-side normalisation."""
    return raw_request(port, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout)


def raw_request(port: int, data: bytes, timeout: float = 10) -> Reply:
    """A request sent byte for byte (a malformed one, a header twice), read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return Reply(int(lines[0].split()[1]), headers, body)


@dataclass
class RunpodApi:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def runpod_api(settings: Settings, log: IO[bytes] | None = None) -> Iterator[RunpodApi]:
    """RunPod's local API (`python -m handler --rp_serve_api`) in front of an already running ComfyUI; the
    worker's output goes to ``log`` (discarded by default)."""
    port = free_port()
    sink: IO[bytes] | int = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "handler", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)],
        cwd=REPO,
        env=child_env(settings),
        stdout=sink,
        stderr=sink,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/docs", 60)
        yield RunpodApi(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
