"""The process owner's two checks: liveness (the process runs) and readiness (it can take jobs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handler.comfyui.process import ComfyProcess
from handler.generate import Generator
from handler.request import Request
from handler.settings import Settings
from tests.helpers import RunningComfy, free_port

pytestmark = pytest.mark.comfyui


def test_running_server_is_alive_and_ready(comfy: RunningComfy) -> None:
    assert comfy.process.alive() and comfy.process.ready()


def test_unstarted_process_is_neither(test_settings: Settings) -> None:
    process = ComfyProcess(test_settings.replace(comfyui_port=free_port()))
    assert not process.alive() and not process.ready()
    assert process.stop() is None


def test_long_lived_objects_are_frozen_out_of_gc(comfy: RunningComfy) -> None:
    """custom_nodes/alpha_gc_freeze ran in ComfyUI, at start and after the first prompt: its post-prompt
    gc.collect() no longer walks the imports and the models (without it, about 300 ms with the GIL held,
    stalling ComfyUI's server; bench/overhead.py)."""
    Generator(comfy.settings).generate(Request(prompt="a tin robot", seed=21))  # a prompt has run
    found = dict(
        re.findall(
            r"alpha_gc_freeze: (at start|after the first prompt): (\d+) objects frozen; a full "
            r"collection took \d+ ms",
            comfy.log(),
        )
    )
    assert set(found) == {"at start", "after the first prompt"}, "the gc-freeze pack did not run in ComfyUI"
    assert 100_000 < int(found["at start"]) < int(found["after the first prompt"])


def test_comfyui_flags_keep_the_prompt_out_of_files_and_previews_off(test_settings: Settings) -> None:
    command = ComfyProcess(test_settings).command(Path("/runtime"))
    assert "--disable-metadata" in command
    assert command[command.index("--preview-method") + 1] == "none"
