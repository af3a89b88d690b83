"""Shared fixtures. One ComfyUI server (the real one, with the test models) per session:
it peaks at about 6 GiB, so tests share it; tests that stop or break ComfyUI start their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from handler import testmodels
from handler.comfyui.client import ComfyClient
from handler.comfyui.process import ComfyProcess
from handler.settings import Settings
from tests.helpers import RunningComfy, free_port, runpod_api


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The environment's settings in test mode, with a free port and private output folder."""
    settings = Settings.from_env().replace(
        test_models=True,
        models_dir=None,
        device="",
        comfyui_args=(),
        comfyui_port=free_port(),
        output_dir=tmp_path_factory.mktemp("comfy-output"),
    )
    if not (settings.comfyui_dir / "main.py").is_file():
        pytest.fail(f"no ComfyUI at {settings.comfyui_dir}: run scripts/setup.sh")
    if not testmodels.is_complete(testmodels.models_dir(settings.test_models_cache)):
        pytest.fail("the test models are missing: run scripts/setup.sh")
    return settings


@contextlib.contextmanager
def running_comfy(settings: Settings, log_dir: pytest.TempPathFactory, name: str) -> Iterator[RunningComfy]:
    """A ComfyUI server owned by the caller's scope, stopped on the way out."""
    log_path = log_dir.mktemp(name) / "comfyui.log"
    process = ComfyProcess(settings, log_path=log_path)
    client = ComfyClient(settings.comfyui_url)
    try:
        process.start()
        process.wait_ready()
        yield RunningComfy(settings, process, log_path, client)
    finally:
        client.close()
        process.stop()


@pytest.fixture(scope="session")
def comfy(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningComfy]:
    with running_comfy(test_settings, tmp_path_factory, "comfy") as running:
        yield running


@pytest.fixture(scope="module")
def serve_api(comfy: RunningComfy) -> Iterator[str]:
    """RunPod's local API (`--rp_serve_api`) in front of the shared ComfyUI, one per test module."""
    with runpod_api(comfy.settings) as api:
        yield api.url
