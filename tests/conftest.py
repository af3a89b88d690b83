"""Shared fixtures. One ComfyUI server (the real one, with the test models) per session:
it peaks at about 6 GiB, so tests share it; tests that stop or break ComfyUI start their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handler import testmodels
from handler.comfy import ComfyClient
from handler.comfy_process import ComfyProcess
from handler.settings import Settings
from tests.helpers import RunningComfy, free_port


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The environment's settings in test mode, with a free port and private output folder."""
    settings = Settings.from_env().replace(test_models=True, models_dir=None, device="", comfyui_args=(),
                                           comfyui_port=free_port(),
                                           output_dir=tmp_path_factory.mktemp("comfy-output"))
    if not (settings.comfyui_dir / "main.py").is_file():
        pytest.fail(f"no ComfyUI at {settings.comfyui_dir}: run scripts/setup.sh")
    if not testmodels.is_complete(testmodels.models_dir(settings.test_models_cache)):
        pytest.fail("the test models are missing: run scripts/setup.sh")
    return settings


def start_comfy(settings: Settings, log_dir: pytest.TempPathFactory, name: str) -> RunningComfy:
    log_path = log_dir.mktemp(name) / "comfyui.log"
    process = ComfyProcess(settings, log_path=log_path)
    process.start()
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return RunningComfy(settings, process, log_path, ComfyClient(settings.comfyui_url))


@pytest.fixture(scope="session")
def comfy(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningComfy]:
    running = start_comfy(test_settings, tmp_path_factory, "comfy")
    try:
        yield running
    finally:
        running.client.close()
        running.process.stop()
