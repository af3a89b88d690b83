"""The process owner's two checks: liveness (the process runs) and readiness (it can take jobs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handler.comfy_process import ComfyProcess
from handler.settings import Settings
from tests.helpers import RunningComfy, free_port

pytestmark = pytest.mark.comfyui


def test_running_server_is_alive_and_ready(comfy: RunningComfy) -> None:
    assert comfy.process.alive() and comfy.process.ready()


def test_unstarted_process_is_neither(test_settings: Settings) -> None:
    process = ComfyProcess(test_settings.replace(comfyui_port=free_port()))
    assert not process.alive() and not process.ready()
    assert process.stop() is None


def test_the_started_objects_are_frozen_out_of_gc(comfy: RunningComfy) -> None:
    """custom_nodes/alpha_gc_freeze ran in ComfyUI: its post-prompt gc.collect() no longer walks the imports
    (without it, about 300 ms with the GIL held, stalling ComfyUI's server; bench/overhead.py)."""
    match = re.search(r"alpha_gc_freeze: (\d+) objects frozen; a full collection took (\d+) ms, now (\d+) ms",
                      comfy.log())
    assert match, "the gc-freeze pack did not run in ComfyUI"
    frozen, before, after = map(int, match.groups())
    assert frozen > 100_000 and after <= before


def test_comfyui_flags_keep_the_prompt_out_of_files_and_previews_off(test_settings: Settings) -> None:
    command = ComfyProcess(test_settings).command(Path("/runtime"))
    assert "--disable-metadata" in command
    assert command[command.index("--preview-method") + 1] == "none"
