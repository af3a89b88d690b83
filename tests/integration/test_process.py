"""The process owner's two checks: liveness (the process runs) and readiness (it can take jobs)."""

from __future__ import annotations

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
