"""The output checks on the real ComfyUI, through the RunPod handler: an image whose alpha is (nearly)
opaque fails as transparency_failed with its coverage; an output over the size limit fails as
output_too_large, or goes to a bucket (a fake S3 served here) when one is configured. No job leaves a file."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runpod.serverless.modules.rp_job import run_job

from handler.doors.runpod.worker import make_handler
from handler.generate import Generator
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.fake_s3 import FakeS3
from tests.helpers import RunningComfy, ServerThread, assert_error, decode_png
from tests.masks import masked

pytestmark = pytest.mark.comfyui


@pytest.fixture
def settings(comfy: RunningComfy) -> Settings:
    """The shared ComfyUI's settings at 64 px (a 1024x1024 request runs at 64x64: 4096 pixels), to keep it short."""
    return comfy.settings.replace(test_size=64)


def files(folder: Path | None) -> set[Path]:
    assert folder is not None
    return {p for p in folder.rglob("*") if p.is_file()}


def run(
    settings: Settings, job_input: dict[str, Any], workflow: Workflow | None = None, job_id: str = "guard-job"
) -> dict[str, Any]:
    handler = make_handler(Generator(settings, workflow=workflow))
    result: dict[str, Any] = asyncio.run(run_job(handler, {"id": job_id, "input": job_input}))
    return result


def with_alpha_mask(settings: Settings, holes: int = 0) -> Workflow:
    """Alpha 255 everywhere but a holes x holes transparent square in a corner."""
    return masked(settings, opaque=True, patch=(0, 0, holes, holes) if holes else None)


def test_an_opaque_image_fails_with_its_coverage(settings: Settings) -> None:
    before = files(settings.output_dir)
    result = run(settings, {"prompt": "a glass apple", "seed": 11}, with_alpha_mask(settings))
    assert result["error"] == (
        "transparency_failed: the output's alpha is 100% opaque: 4096 of 4096 pixels "
        "(threshold 99.9%, ALPHA_MAX_UNIFORM_ALPHA): LayerDiffuse did not take effect"
    )
    assert_error(result, "transparency_failed", None)
    assert "stopPod" not in result
    assert files(settings.output_dir) == before, "a failed job leaves no output file"


def test_a_nearly_opaque_image_fails_at_the_threshold_only(settings: Settings) -> None:
    """4 transparent pixels of 4096: 99.902% opaque. Over the default 99.9%; a threshold of 1 lets it pass."""
    workflow = with_alpha_mask(settings, holes=2)
    before = files(settings.output_dir)
    failed = run(settings, {"prompt": "a glass apple", "seed": 12}, workflow)
    assert_error(failed, "transparency_failed", None)
    assert failed["error"].startswith(
        "transparency_failed: the output's alpha is 99.9023% opaque: 4092 of 4096 "
        "pixels (threshold 99.9%, ALPHA_MAX_UNIFORM_ALPHA)"
    )
    passed = run(settings.replace(max_uniform_alpha=1.0), {"prompt": "a glass apple", "seed": 12}, workflow)
    assert set(passed) == {"output"}, passed.get("error")
    alpha = passed["output"]["info"]["alpha"]
    assert (alpha["alpha_min"], alpha["alpha_max"], alpha["transparent"]) == (0, 255, round(4 / 4096, 6))
    assert files(settings.output_dir) == before


def test_an_output_over_the_limit_fails_as_output_too_large(settings: Settings) -> None:
    before = files(settings.output_dir)
    result = run(settings.replace(max_output_bytes=4096), {"prompt": "a glass apple", "seed": 13})
    match = re.fullmatch(
        r"output_too_large: the output is (\d+) bytes \(a (\d+)-byte PNG, sent twice as base64\); "
        r"the limit is 4096 bytes \(ALPHA_MAX_OUTPUT_BYTES\); set BUCKET_ENDPOINT_URL and the other "
        r"bucket settings to upload large images instead",
        result["error"],
    )
    assert match, result["error"]
    output_bytes, png_bytes = int(match[1]), int(match[2])
    assert png_bytes > 4096 and output_bytes > 2 * png_bytes * 4 // 3
    assert_error(result, "output_too_large", None)
    assert files(settings.output_dir) == before


@pytest.fixture
def s3() -> Iterator[tuple[FakeS3, ServerThread]]:
    fake = FakeS3()
    with ServerThread(fake.app()) as server:
        yield fake, server


def test_an_output_over_the_limit_goes_to_the_bucket(settings: Settings, s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    before = files(settings.output_dir)
    bucket = settings.replace(
        max_output_bytes=4096,
        bucket_endpoint_url=server.url,
        bucket_access_key_id="AKIDINTEGRATION",
        bucket_secret_access_key="s3cr3t-" * 4,
        bucket_name="alpha-out",
    )
    result = run(bucket, {"prompt": "a glass apple", "seed": 14}, job_id="sync-upload-1")
    assert set(result) == {"output"}, result.get("error")
    output = result["output"]
    assert set(output) == {"status", "url", "filename", "info"} and output["status"] == "success"
    key = f"alpha-out/sync-upload-1/{output['filename']}"
    assert list(fake.objects) == [key] and output["url"].startswith(f"{server.url}/{key}?X-Amz-")
    with urllib.request.urlopen(output["url"], timeout=10) as response:
        png = response.read()
    assert png == fake.objects[key]
    image = decode_png(png)
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (64, 64)
    assert output["info"]["seed"] == 14
    assert files(settings.output_dir) == before
