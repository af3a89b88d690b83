"""The asset options on the real ComfyUI with the test models, through RunPod's own run_job and the local alpha
API: trim (on a workflow whose subject is in a known box), lossless WebP (the same pixels as the PNG of the same
seed), each delivery mode (a fake S3 for ``bucket``), and the second chance on a forced flat alpha. No job leaves
a file in ComfyUI's output folder."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import numpy as np
import pytest
from PIL import Image
from runpod.serverless.modules.rp_job import run_job

from handler.doors.alpha import openapi
from handler.doors.alpha.server import create_app
from handler.doors.runpod.worker import make_handler
from handler.generate import Generator
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.fake_s3 import FakeS3
from tests.helpers import RunningComfy, ServerThread, assert_error, http
from tests.masks import masked

pytestmark = pytest.mark.comfyui
BOX = (20, 12, 36, 40)  # the cut-out workflow's subject on the 64 px canvas
PROMPT = "a glass apple"


@pytest.fixture(scope="module")
def settings(comfy: RunningComfy) -> Settings:
    """The shared ComfyUI at 64 px: a 1024x1024 request runs at 64x64."""
    return comfy.settings.replace(test_size=64)


@pytest.fixture(scope="module")
def cut_out(settings: Settings) -> Workflow:
    return masked(settings, opaque=False, patch=BOX)


@pytest.fixture(autouse=True)
def no_file_left(settings: Settings) -> Iterator[None]:
    folder = settings.effective_output_dir
    before = {p for p in folder.rglob("*") if p.is_file()}
    yield
    assert {p for p in folder.rglob("*") if p.is_file()} == before, "a job left a file in ComfyUI's output folder"


def run(settings: Settings, job_input: dict[str, Any], workflow: Workflow | None = None) -> dict[str, Any]:
    handler = make_handler(Generator(settings, workflow=workflow))
    result: dict[str, Any] = asyncio.run(
        run_job(handler, {"id": "asset-job", "input": {"prompt": PROMPT, **job_input}})
    )
    return result


# The published OpenAPI document's schema of a result (the alpha API's); its `info` is the RunPod output's too.
DOCUMENT = openapi.document(token_required=False, sizes=[(1024, 1024)])
RESULT = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Txt2ImgResult", **DOCUMENT})
INFO = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/Txt2ImgResult/properties/info", "components": DOCUMENT["components"]}
)


def output_of(result: dict[str, Any]) -> dict[str, Any]:
    """A RunPod success output, its ``info`` checked against the published document."""
    assert set(result) == {"output"}, result.get("error")
    output: dict[str, Any] = result["output"]
    INFO.validate(output["info"])
    return output


def pixels(data: bytes, format: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode) == (format, "RGBA")
        return np.asarray(image)


def inline_image(output: dict[str, Any], mime_type: str) -> bytes:
    """The image of an ``inline`` output, checked: the data URI's type, and the same bytes in both fields."""
    assert set(output) == {"status", "url", "image_base64", "filename", "info"}
    assert output["url"] == f"data:{mime_type};base64,{output['image_base64']}"
    assert output["info"]["mime_type"] == mime_type
    return base64.b64decode(output["image_base64"], validate=True)


def test_trim_cuts_the_subject_out_with_its_margin(settings: Settings, cut_out: Workflow) -> None:
    whole = output_of(run(settings, {"seed": 21}, cut_out))
    trimmed = output_of(run(settings, {"seed": 21, "trim": True, "trim_margin": 4}, cut_out))
    canvas = pixels(inline_image(whole, "image/png"), "PNG")
    cut = pixels(inline_image(trimmed, "image/png"), "PNG")
    info = trimmed["info"]
    assert info["alpha"]["bbox"] == whole["info"]["alpha"]["bbox"] == list(BOX)
    assert info["crop"] == [16, 8, 40, 44] and "crop" not in whole["info"]
    assert cut.shape == (36, 24, 4) and (info["alpha"]["width"], info["alpha"]["height"]) == (24, 36)
    assert np.array_equal(cut, canvas[8:44, 16:40]), "the cut is the canvas's pixels in the box"
    assert cut[..., 3].sum() == 255 * 16 * 28 and canvas[..., 3].sum() == cut[..., 3].sum(), "no visible pixel lost"
    assert info["alpha"]["transparent"] == round(1 - 16 * 28 / (24 * 36), 6), "alpha describes the returned image"
    assert info["format"] == "png" and trimmed["filename"].endswith(".png")


def test_the_transparency_check_is_on_the_canvas_not_the_cut(settings: Settings, cut_out: Workflow) -> None:
    """Cut without a margin, the subject is all opaque: 100% over ALPHA_MAX_UNIFORM_ALPHA. It passes because the
    check ran on the generated canvas (98.9% transparent), before the trim."""
    output = output_of(run(settings, {"seed": 28, "trim": True}, cut_out))
    assert output["info"]["crop"] == list(BOX) and output["info"]["alpha"]["opaque"] == 1.0
    assert pixels(inline_image(output, "image/png"), "PNG").shape == (28, 16, 4)


def test_webp_is_the_png_of_the_same_seed_losslessly(settings: Settings) -> None:
    """The production workflow (LayerDiffuse's alpha): the WebP's alpha is the PNG's exactly, and so is its RGB
    wherever alpha > 0."""
    png = pixels(inline_image(output_of(run(settings, {"seed": 22})), "image/png"), "PNG")
    output = output_of(run(settings, {"seed": 22, "format": "webp"}))
    webp = pixels(inline_image(output, "image/webp"), "WEBP")
    assert output["filename"].endswith(".webp") and output["info"]["format"] == "webp"
    visible = png[..., 3] > 0
    assert np.array_equal(webp[..., 3], png[..., 3]) and np.array_equal(webp[visible], png[visible])
    assert 0 < visible.mean() < 1, "the check is not vacuous: some pixels are transparent, some visible"


def test_base64_delivery_sends_the_image_once(settings: Settings, cut_out: Workflow) -> None:
    job = {"seed": 23, "trim": True, "trim_margin": 2, "format": "webp", "delivery": "base64"}
    output = output_of(run(settings, job, cut_out))
    assert set(output) == {"status", "image_base64", "filename", "info"}
    image = pixels(base64.b64decode(output["image_base64"], validate=True), "WEBP")
    assert image.shape == (32, 20, 4) and output["info"]["crop"] == [18, 10, 38, 42]


@pytest.fixture
def s3() -> Iterator[tuple[FakeS3, ServerThread]]:
    fake = FakeS3()
    with ServerThread(fake.app()) as server:
        yield fake, server


def test_bucket_delivery_uploads_the_asset(
    settings: Settings, cut_out: Workflow, s3: tuple[FakeS3, ServerThread]
) -> None:
    fake, server = s3
    bucket = settings.replace(
        bucket_endpoint_url=server.url,
        bucket_access_key_id="AKIDINTEGRATION",
        bucket_secret_access_key="s3cr3t-" * 4,
        bucket_name="alpha-out",
    )
    job = {"seed": 24, "trim": True, "trim_margin": 2, "format": "webp", "delivery": "bucket"}
    output = output_of(run(bucket, job, cut_out))
    assert set(output) == {"status", "url", "filename", "info"} and output["filename"].endswith(".webp")
    key = f"alpha-out/asset-job/{output['filename']}"
    assert list(fake.objects) == [key] and fake.content_types[key] == "image/webp"
    with urllib.request.urlopen(output["url"], timeout=10) as response:
        assert response.headers["Content-Type"] == "image/webp"
        assert pixels(response.read(), "WEBP").shape == (32, 20, 4)


def test_bucket_delivery_without_a_bucket_is_refused_before_anything_runs(
    settings: Settings, comfy: RunningComfy
) -> None:
    before = comfy.history_size()
    result = run(settings, {"seed": 25, "delivery": "bucket"})
    assert_error(result, "invalid_input", "delivery", words="no bucket configured (BUCKET_ENDPOINT_URL)")
    assert comfy.history_size() == before, "nothing was submitted"


def seeds_run(comfy: RunningComfy, since: int) -> list[int]:
    """The sampler seeds of the prompts ComfyUI ran after the first ``since``, in order."""
    history = comfy.history()
    graphs = [entry["prompt"][2] for entry in list(history.values())[since:]]
    return [next(n["inputs"]["seed"] for n in graph.values() if n["class_type"] == "KSampler") for graph in graphs]


def test_a_flat_alpha_is_retried_once_with_a_new_seed(settings: Settings, comfy: RunningComfy) -> None:
    opaque = masked(settings, opaque=True)
    before = comfy.history_size()
    result = run(settings, {}, opaque)  # no seed: ALPHA_TRANSPARENCY_RETRIES (1) applies
    flat = "the output's alpha is 100% opaque: 4096 of 4096 pixels"
    body = assert_error(result, "transparency_failed", None, words="every attempt failed the transparency check")
    found = re.findall(rf"attempt (\d) \(seed (\d+)\): {re.escape(flat)}", body["message"])
    assert [n for n, _ in found] == ["1", "2"], body["message"]
    tried = [int(seed) for _, seed in found]
    assert tried[0] != tried[1] and seeds_run(comfy, before) == tried, "two prompts, with the seeds the error names"

    before = comfy.history_size()
    assert_error(run(settings, {"seed": 26}, opaque), "transparency_failed", None, words=flat)
    assert seeds_run(comfy, before) == [26], "a given seed is never retried"
    before = comfy.history_size()
    assert_error(run(settings.replace(transparency_retries=0), {}, opaque), "transparency_failed", None, words=flat)
    assert len(seeds_run(comfy, before)) == 1, "ALPHA_TRANSPARENCY_RETRIES=0: no retry"


def test_the_alpha_api_serves_a_trimmed_webp(settings: Settings, cut_out: Workflow, tmp_path: Path) -> None:
    generator = Generator(settings.replace(serve_dir=tmp_path), workflow=cut_out)
    with ServerThread(create_app(generator)) as server:
        body = {"prompt": PROMPT, "seed": 27, "trim": True, "trim_margin": 2, "format": "webp"}
        reply = http("POST", f"{server.url}/alpha/v1/txt2img", json.dumps(body).encode(), JSON)
        assert reply.status == 200, reply.body[:300]
        answer = reply.json()
        RESULT.validate(answer)
        assert re.fullmatch(r"/alpha/v1/file/alpha_[0-9a-f]{32}\.webp", answer["url"])
        assert answer["info"]["crop"] == [18, 10, 38, 42] and answer["info"]["mime_type"] == "image/webp"
        served = http("GET", server.url + answer["url"])
        assert served.status == 200 and served.headers["Content-Type"] == "image/webp"
        assert pixels(served.body, "WEBP").shape == (32, 20, 4)
        assert [p.name for p in tmp_path.iterdir()] == [answer["filename"]]


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("delivery", ["inline", "base64", "bucket"])
def test_the_alpha_api_refuses_delivery(settings: Settings, comfy: RunningComfy, tmp_path: Path, delivery: str) -> None:
    before = comfy.history_size()
    with ServerThread(create_app(Generator(settings.replace(serve_dir=tmp_path)))) as server:
        body = {"prompt": PROMPT, "delivery": delivery}
        reply = http("POST", f"{server.url}/alpha/v1/txt2img", json.dumps(body).encode(), JSON)
    assert reply.status == 400
    assert_error(reply.json(), "invalid_input", "delivery", words="'delivery' does not apply to the alpha API")
    assert comfy.history_size() == before and list(tmp_path.iterdir()) == []
