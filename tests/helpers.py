"""Small helpers shared by the test layers."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from handler.comfy import ComfyClient
from handler.comfy_process import ComfyProcess
from handler.settings import Settings


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
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
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
    alpha = np.asarray(image)[..., 3]
    assert alpha.min() < alpha.max(), "alpha must not be constant"
    assert output["filename"].startswith("alpha_") and output["filename"].endswith(".png")
    return png, output["info"]


@dataclass
class RunningComfy:
    settings: Settings
    process: ComfyProcess
    log_path: Path
    client: ComfyClient

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def history_size(self) -> int:
        return len(self.client._json("GET", "/history"))
