"""The layer modes on the real ComfyUI with the test models (their four LayerDiffuse files in the real key
format): each mode end to end through RunPod's own run_job and the local alpha API, the ablation that shows the
input image conditions the result, the clean-up of the uploaded image (a failed job too), and a mode whose model
file is missing refused with ``mode_unavailable`` while ``text`` still runs."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
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
from handler.testmodels import models_dir
from tests.helpers import RunningComfy, ServerThread, assert_error, http, no_file_left_in
from tests.layer_images import BACKGROUND, FOREGROUND, background, encoded, foreground

pytestmark = pytest.mark.comfyui
PROMPT = "a cat sitting"
JSON = {"Content-Type": "application/json"}
DOCUMENT = openapi.document(token_required=False, sizes=[(1024, 1024)])
RESULT = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Txt2ImgResult", **DOCUMENT})
INFO = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/Txt2ImgResult/properties/info", "components": DOCUMENT["components"]}
)


@pytest.fixture(scope="module")
def settings(comfy: RunningComfy) -> Settings:
    """The shared ComfyUI at 64 px: a 1024x1024 job runs at 64x64, both passes."""
    return comfy.settings.replace(test_size=64)


@pytest.fixture(autouse=True)
def no_file_left(settings: Settings) -> Iterator[None]:
    with no_file_left_in(settings):
        yield


def run(settings: Settings, job_input: dict[str, Any], job_id: str = "layer-job") -> dict[str, Any]:
    handler = make_handler(Generator(settings))
    result: dict[str, Any] = asyncio.run(run_job(handler, {"id": job_id, "input": {"prompt": PROMPT, **job_input}}))
    return result


def output_of(result: dict[str, Any]) -> dict[str, Any]:
    """A RunPod success output, its ``info`` checked against the published document."""
    assert set(result) == {"output"}, result.get("error")
    output: dict[str, Any] = result["output"]
    INFO.validate(output["info"])
    return output


def image_of(entry: dict[str, Any]) -> Image.Image:
    """An ``inline`` image (the main one or a layer): the data URI and the base64 are the same PNG."""
    assert entry["url"] == f"data:image/png;base64,{entry['image_base64']}"
    with Image.open(io.BytesIO(base64.b64decode(entry["image_base64"], validate=True))) as image:
        assert image.format == "PNG"
        image.load()
        return image


def test_foreground_mode_returns_a_transparent_foreground_and_the_blend(
    settings: Settings, comfy: RunningComfy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    output = output_of(run(settings, {"seed": 31, "mode": "foreground", "background": BACKGROUND}))
    logged = caplog.text + comfy.log()
    assert BACKGROUND[100:140] not in logged and output["image_base64"][100:140] not in logged, "no base64 in logs"
    assert set(output) == {"status", "url", "image_base64", "filename", "info", "layers"}
    main, blended = image_of(output), image_of(output["layers"]["blended"])
    alpha = np.asarray(main)[..., 3]
    assert main.mode == "RGBA" and main.size == (64, 64) and alpha.min() < alpha.max(), "really transparent"
    assert blended.mode == "RGB" and blended.size == (64, 64)
    info = output["info"]
    assert info["mode"] == "foreground" and (info["width"], info["height"]) == (1024, 1024), "the 1:1 size"
    assert info["workflow"]["name"] == "alpha_foreground" and info["timings_ms"]["upload"] >= 0
    assert output["layers"]["blended"]["filename"] == output["filename"].replace(".png", "_blended.png")


def test_background_mode_returns_an_opaque_background_and_the_blend(settings: Settings) -> None:
    wide = encoded(foreground((192, 108)))  # 16:9: the nearest allowed size is 1344x768
    output = output_of(run(settings, {"seed": 32, "mode": "background", "foreground": wide}))
    main, blended = image_of(output), image_of(output["layers"]["blended"])
    assert main.mode == "RGB" and blended.mode == "RGB", "a background is opaque"
    info = output["info"]
    assert info["mode"] == "background" and (info["width"], info["height"]) == (1344, 768)
    assert main.size == blended.size == (64, 64), "test mode: 1344x768 at 64 px on its longest side, 64 at least"
    assert info["alpha"]["opaque"] == 1.0 and info["attempts"] == [{"seed": 32, "rejected": None}]


def test_the_layers_follow_the_format_and_delivery(settings: Settings) -> None:
    job = {"seed": 33, "mode": "foreground", "background": BACKGROUND, "format": "webp", "delivery": "base64"}
    output = output_of(run(settings, job))
    assert set(output) == {"status", "image_base64", "filename", "info", "layers"}
    assert set(output["layers"]["blended"]) == {"image_base64", "filename"}
    for entry in (output, output["layers"]["blended"]):
        assert entry["filename"].endswith(".webp")
        with Image.open(io.BytesIO(base64.b64decode(entry["image_base64"]))) as image:
            assert image.format == "WEBP"


def main_pixels(settings: Settings, job: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    output = output_of(run(settings, job))
    return np.asarray(image_of(output)), np.asarray(image_of(output["layers"]["blended"]))


def test_the_input_image_conditions_the_result(settings: Settings, comfy: RunningComfy) -> None:
    """Same seed and prompt: two different backgrounds give different images, the same background twice the
    same ones; and ComfyUI dropped no patch of the four layer files."""
    job = {"seed": 34, "mode": "foreground"}
    red_sky = encoded(background(colour=(220, 40, 40)))
    first, first_blend = main_pixels(settings, {**job, "background": BACKGROUND})
    again, again_blend = main_pixels(settings, {**job, "background": BACKGROUND})
    other, other_blend = main_pixels(settings, {**job, "background": red_sky})
    assert np.array_equal(first, again) and np.array_equal(first_blend, again_blend), "deterministic"
    assert np.abs(first_blend.astype(int) - other_blend).mean() > 2.0, "the blend follows the background"
    assert np.abs(first.astype(int) - other).mean() > 2.0, "so does the foreground"

    job = {"seed": 35, "mode": "background"}
    blue = encoded(foreground(colour=(30, 30, 220)))
    first, _ = main_pixels(settings, {**job, "foreground": FOREGROUND})
    other, _ = main_pixels(settings, {**job, "foreground": blue})
    assert np.abs(first.astype(int) - other).mean() > 2.0, "the background follows the foreground"
    log = comfy.log()
    assert "WEIGHT NOT MERGED" not in log and "patch type not recognized" not in log
    assert "lora key not loaded" not in log


@pytest.mark.parametrize(
    ("mode", "image", "main_mode"), [("foreground", BACKGROUND, "RGBA"), ("background", FOREGROUND, "RGB")]
)
def test_the_alpha_api_serves_both_layers(
    settings: Settings, tmp_path: Path, mode: str, image: str, main_mode: str
) -> None:
    with ServerThread(create_app(Generator(settings.replace(serve_dir=tmp_path)))) as server:
        field = "background" if mode == "foreground" else "foreground"
        body = {"prompt": PROMPT, "seed": 36, "mode": mode, field: image}
        reply = http("POST", f"{server.url}/alpha/v1/txt2img", json.dumps(body).encode(), JSON, timeout=120)
        assert reply.status == 200, reply.body[:300]
        answer = reply.json()
        RESULT.validate(answer)
        assert answer["info"]["mode"] == mode
        for entry, colour in ((answer, main_mode), (answer["layers"]["blended"], "RGB")):
            served = http("GET", server.url + entry["url"])
            assert served.status == 200 and served.headers["Content-Type"] == "image/png"
            with Image.open(io.BytesIO(served.body)) as served_image:
                assert (served_image.format, served_image.mode, served_image.size) == ("PNG", colour, (64, 64))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [answer["filename"], answer["layers"]["blended"]["filename"]]
        )


def test_a_failed_layer_job_leaves_no_input_file(settings: Settings, comfy: RunningComfy) -> None:
    """The deadline passes while the prompt runs: the job fails as ``timeout``, and its uploaded image goes with
    its outputs (``no_file_left``)."""
    slow = settings.replace(job_timeout_s=3.0, test_size=256)  # two passes at 256 px take longer
    before = comfy.history_size()
    result = run(slow, {"seed": 37, "mode": "foreground", "background": BACKGROUND})
    assert_error(result, "timeout", None)
    assert comfy.history_size() == before + 1, "the prompt ran (and was interrupted): the test is not vacuous"


@pytest.fixture
def missing_layer_file(settings: Settings) -> Iterator[str]:
    """A test model of the foreground mode hidden from ComfyUI (renamed), put back afterwards."""
    name = "layer_xl_bg2ble.safetensors"
    path = models_dir(settings.test_models_cache) / "layer_model" / name
    hidden = path.with_name(name + ".hidden")
    path.rename(hidden)
    try:
        yield name
    finally:
        hidden.rename(path)


def test_a_mode_whose_model_file_is_missing_is_refused(
    settings: Settings, comfy: RunningComfy, missing_layer_file: str
) -> None:
    generator = Generator(settings)
    before = comfy.history_size()
    result = asyncio.run(
        run_job(
            make_handler(generator),
            {"id": "missing", "input": {"prompt": PROMPT, "mode": "foreground", "background": BACKGROUND}},
        )
    )
    assert_error(result, "mode_unavailable", "mode", words=f"model file layer_model/{missing_layer_file} is missing")
    assert comfy.history_size() == before, "nothing was submitted"
    # The worker still serves the other modes, and text.
    text = asyncio.run(run_job(make_handler(generator), {"id": "text", "input": {"prompt": PROMPT, "seed": 38}}))
    assert output_of(text)["info"]["mode"] == "text"


def test_a_mode_turned_off_is_refused(settings: Settings, comfy: RunningComfy) -> None:
    before = comfy.history_size()
    off = settings.replace(background_workflow=None)
    result = run(off, {"mode": "background", "foreground": FOREGROUND})
    assert_error(result, "mode_unavailable", "mode", words="ALPHA_BACKGROUND_WORKFLOW is empty")
    assert comfy.history_size() == before
