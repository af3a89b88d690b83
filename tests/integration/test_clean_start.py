"""A healthy ComfyUI start logs no traceback: what an operator reads in RunPod's log on a good worker.

The shared server's own log (tests/conftest.py) up to the line that says it serves; it is started by the same
ComfyProcess that the worker uses, so with the same launcher (handler/comfyui/launch.py) and arguments."""

from __future__ import annotations

import json

import pytest

from handler.comfyui.launch import PINS
from tests.helpers import RunningComfy

pytestmark = pytest.mark.comfyui

# What a failed import or a missing package looks like in ComfyUI's log.
ALARMS = ("Traceback", "IMPORT FAILED", "ModuleNotFoundError", "Error importing dependencies", "ERROR")
SERVING = "To see the GUI go to"


def start_log(comfy: RunningComfy) -> str:
    text = comfy.log()
    assert SERVING in text, text[-2000:]
    return text.split(SERVING, 1)[0]


def test_the_start_log_has_no_traceback_or_failed_import(comfy: RunningComfy) -> None:
    text = start_log(comfy)
    found = {alarm: text.count(alarm) for alarm in ALARMS if alarm in text}
    assert not found, f"{found} in ComfyUI's start log:\n{text}"


def test_the_skipped_extras_are_logged_once_each_and_absent(comfy: RunningComfy) -> None:
    """Each extra in pins/comfyui.json is skipped on purpose, said once; the nodes the worker needs load."""
    skipped = json.loads(PINS.read_text())["headless"]["skip_extras"]
    text = start_log(comfy)
    for name in skipped:
        assert text.count(f"not loading comfy_extras/{name}: unused by this worker") == 1, name
    nodes = comfy.client._json("GET", "/object_info")
    # nodes_canny.py and nodes_upscale_model.py define these; the layer and compositing nodes stay.
    assert "Canny" not in nodes and "UpscaleModelLoader" not in nodes
    assert {"LayeredDiffusionApply", "LayeredDiffusionDecodeRGBA", "JoinImageWithAlpha"} <= set(nodes)


def test_no_web_assets_are_served(comfy: RunningComfy) -> None:
    """No templates or docs routes (this worker has no web UI): the launcher's second patch took."""
    for path in ("/templates/index.json", "/docs/en/KSampler.md"):
        with pytest.raises(Exception, match="404"):
            comfy.client._json("GET", path)
