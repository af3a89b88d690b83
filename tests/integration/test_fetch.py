"""The core takes the saved PNG from ComfyUI's output folder (ComfyUI's HTTP server may be stalled by its own
gc.collect() right after a prompt), and asks ComfyUI's /view only when the file is not on this disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from handler.deadline import Deadline
from handler.generate import Generator
from handler.request import Request
from tests.helpers import RunningComfy, rgba

pytestmark = pytest.mark.comfyui


def test_png_from_disk_and_from_view(comfy: RunningComfy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = Generator(comfy.settings)
    views: list[str] = []
    real_view = local.client.view

    def view(image: dict[str, Any], deadline: Deadline) -> bytes:
        views.append(str(image.get("filename")))
        return real_view(image, deadline)

    monkeypatch.setattr(local.client, "view", view)
    on_disk = local.generate(Request(prompt="a paper kite", seed=11))
    assert views == [], "the PNG in ComfyUI's own output folder is read from disk"

    # A worker whose output folder is not ComfyUI's (a misconfiguration) still gets the image, over HTTP.
    elsewhere = Generator(comfy.settings.replace(output_dir=tmp_path / "not-comfyui"), client=local.client)
    over_http = elsewhere.generate(Request(prompt="a paper kite", seed=11))
    assert len(views) == 1 and views[0].startswith(over_http.filename.removesuffix(".png"))
    assert (rgba(over_http.image) == rgba(on_disk.image)).all()
    # That worker could not sweep ComfyUI's folder; this test does.
    for path in comfy.settings.effective_output_dir.glob(over_http.filename.removesuffix(".png") + "_*"):
        path.unlink()
