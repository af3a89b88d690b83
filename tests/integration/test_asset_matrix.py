"""Every combination of the output options through both doors, on the real ComfyUI with the test models: ``mode``
(text, foreground, background) x ``trim`` (off, on, on with ``trim_margin``) x ``format`` (png, webp) x ``delivery``
(inline, base64, bucket to a fake S3; the alpha API takes no ``delivery`` and serves files). Each output is decoded
and checked against the request: its format, its mode (RGBA, but RGB for the opaque background, the blended layer
and a WebP whose every pixel is opaque), and its size (the canvas untrimmed, else the visible box grown by the
margin and clipped to the canvas).

The layer modes run their shipped workflows without the LayerDiffuse model patches (``quick``): the same nodes
save the same kinds of image (an RGBA foreground from LayerDiffuse's decoder, an opaque background, the blended
picture), but no sampler depends on the uploaded image, so ComfyUI reuses its cached samples from one job to the
next, where the shipped ones re-patch the UNet twice a job (about 20 s a job on the CI machine; 48 of them took
25 minutes). The shipped workflows run the combination that failed (background, trim, WebP) through each door.
Jobs run at 64 px, one generator per door and a fixed seed per mode."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import numpy as np
import pytest
from PIL import Image
from runpod.serverless.modules.rp_job import run_job

from handler.asset import crop_box
from handler.doors.alpha import openapi
from handler.doors.alpha.server import create_app
from handler.doors.runpod.worker import make_handler
from handler.generate import Generator
from handler.request import DELIVERIES as DECLARED_DELIVERIES
from handler.request import FORMATS as DECLARED_FORMATS
from handler.request import MODES as DECLARED_MODES
from handler.settings import Settings
from handler.workflow.graph import Workflow
from handler.workflow.rules import is_link
from tests.fake_s3 import FakeS3
from tests.helpers import RunningComfy, ServerThread, http, no_file_left_in
from tests.layer_images import BACKGROUND, FOREGROUND

pytestmark = pytest.mark.comfyui
PROMPT = "a glass apple"
BUCKET = "alpha-out"
# A fixed seed per mode: jobs of one mode in a row differ only in their file names, so ComfyUI reuses its samples.
MODES: dict[str, dict[str, Any]] = {
    "text": {"seed": 41},
    "foreground": {"seed": 42, "mode": "foreground", "background": BACKGROUND},
    "background": {"seed": 43, "mode": "background", "foreground": FOREGROUND},
}
TRIMS: dict[str, dict[str, Any]] = {"whole": {}, "trim": {"trim": True}, "margin": {"trim": True, "trim_margin": 5}}
FORMATS = ("png", "webp")
DELIVERIES = ("inline", "base64", "bucket")
DOCUMENT = openapi.document(token_required=False, sizes=[(1024, 1024)])
RESULT = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Txt2ImgResult", **DOCUMENT})
INFO = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/Txt2ImgResult/properties/info", "components": DOCUMENT["components"]}
)


@dataclass(frozen=True)
class Asked:
    """One combination: the request's output options."""

    mode: str
    trim: str
    format: str

    @property
    def input(self) -> dict[str, Any]:
        return {"prompt": PROMPT, **MODES[self.mode], **TRIMS[self.trim], "format": self.format}


def combinations(modes: list[str]) -> list[Asked]:
    """Mode outermost, so jobs with the same seed and graph run one after another."""
    return [Asked(mode, trim, format) for mode in modes for trim in TRIMS for format in FORMATS]


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[FakeS3, str]]:
    fake = FakeS3()
    with ServerThread(fake.app()) as server:
        yield fake, server.url


def quick(shipped: Path, folder: Path) -> Path:
    """A layer mode's shipped workflow without its LayerDiffuse model patches (the ``LayeredDiffusion*Apply``
    nodes): their model and conditioning go straight to the samplers. The input image's node stays (the job
    uploads to it) but feeds no output, so ComfyUI never runs it, and the samples are cached across jobs."""
    graph = copy.deepcopy(Workflow.load(shipped).graph)
    patches = {i for i, node in graph.items() if re.fullmatch(r"LayeredDiffusion\w*Apply", node["class_type"])}
    assert len(patches) == 2, "a layer workflow patches the UNet for each of its two passes"
    for node in graph.values():
        for key, value in node["inputs"].items():
            if is_link(value) and str(value[0]) in patches:  # outputs: model, conditioning, unconditioning
                node["inputs"][key] = graph[str(value[0])]["inputs"][("model", "cond", "uncond")[value[1]]]
    for node_id in patches:
        del graph[node_id]
    path = folder / f"quick_{shipped.stem}.json"
    path.write_text(json.dumps(graph))
    return path


@pytest.fixture(scope="module")
def bucket_settings(comfy: RunningComfy, s3: tuple[FakeS3, str]) -> Settings:
    """The shared ComfyUI at 64 px (every allowed size runs at 64x64), with the fake bucket configured."""
    return comfy.settings.replace(
        test_size=64,
        bucket_endpoint_url=s3[1],
        bucket_access_key_id="AKIDMATRIX",
        bucket_secret_access_key="s3cr3t-" * 4,
        bucket_name=BUCKET,
    )


@pytest.fixture(scope="module")
def settings(bucket_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Those settings with the quick layer workflows."""
    folder = tmp_path_factory.mktemp("quick-workflows")
    paths = bucket_settings.layer_workflows
    return bucket_settings.replace(
        foreground_workflow=quick(paths["foreground"], folder), background_workflow=quick(paths["background"], folder)
    )


@pytest.fixture(scope="module")
def runpod_handler(settings: Settings) -> Any:
    return make_handler(Generator(settings))


@pytest.fixture(scope="module")
def alpha_api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    served = tmp_path_factory.mktemp("matrix-served")
    with ServerThread(create_app(Generator(settings.replace(serve_dir=served)))) as server:
        yield server.url


@pytest.fixture(autouse=True)
def no_file_left(bucket_settings: Settings) -> Iterator[None]:
    with no_file_left_in(bucket_settings):
        yield


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def check_main(image: Image.Image, asked: Asked, info: dict[str, Any]) -> None:
    """The main image: the asked format, the mode the contract gives it, and the canvas or the trimmed box."""
    canvas = (info["test_mode"]["width"], info["test_mode"]["height"])
    assert canvas == (64, 64), "test mode at 64 px"
    assert (info["format"], info["mime_type"], info["mode"]) == (asked.format, f"image/{asked.format}", asked.mode)
    assert image.format == asked.format.upper()
    alpha = info["alpha"]
    opaque = asked.mode == "background" or (asked.format == "webp" and alpha["opaque"] == 1.0)
    assert image.mode == ("RGB" if opaque else "RGBA"), (image.mode, alpha)
    bbox = tuple(alpha["bbox"])
    if asked.mode == "background":
        assert bbox == (0, 0, *canvas), "an opaque background is visible everywhere"
    if asked.trim == "whole":
        assert image.size == canvas and "crop" not in info
    else:
        crop = tuple(info["crop"])
        assert crop == crop_box(bbox, TRIMS[asked.trim].get("trim_margin", 0), canvas)
        left, top, right, bottom = crop
        assert 0 <= left <= bbox[0] and 0 <= top <= bbox[1] and bbox[2] <= right <= 64 and bbox[3] <= bottom <= 64
        assert image.size == (right - left, bottom - top)
    assert (alpha["width"], alpha["height"]) == image.size, "info.alpha describes the returned image"
    if image.mode == "RGBA":
        visible = np.argwhere(np.asarray(image)[..., 3] > 0)
        (top_y, left_x), (bottom_y, right_x) = visible.min(axis=0), visible.max(axis=0) + 1
        offset = (0, 0) if asked.trim == "whole" else tuple(info["crop"][:2])
        shifted = (left_x + offset[0], top_y + offset[1], right_x + offset[0], bottom_y + offset[1])
        assert shifted == bbox, "the visible pixels are where info.alpha.bbox says, on the canvas"


def check_blended(image: Image.Image, asked: Asked, filename: str, main_filename: str) -> None:
    """A layer mode's blended picture: the asked format, opaque, the whole canvas (never trimmed)."""
    assert (image.format, image.mode, image.size) == (asked.format.upper(), "RGB", (64, 64))
    assert filename == main_filename.replace(f".{asked.format}", f"_blended.{asked.format}")


def delivered(entry: dict[str, Any], asked: Asked, delivery: str, s3: FakeS3, job_id: str) -> Image.Image:
    """One image of a RunPod output, in the delivery's keys and no others."""
    mime = f"image/{asked.format}"
    assert entry["filename"].endswith(f".{asked.format}")
    if delivery == "bucket":
        assert set(entry) - {"status", "info", "layers"} == {"url", "filename"}
        key = f"{BUCKET}/{job_id}/{entry['filename']}"
        assert s3.content_types[key] == mime
        with urllib.request.urlopen(entry["url"], timeout=10) as response:
            assert response.headers["Content-Type"] == mime
            data = response.read()
        assert data == s3.objects[key]
        return decoded(data)
    data = base64.b64decode(entry["image_base64"], validate=True)
    if delivery == "inline":
        assert set(entry) - {"status", "info", "layers"} == {"url", "image_base64", "filename"}
        assert entry["url"] == f"data:{mime};base64,{entry['image_base64']}"
    else:
        assert set(entry) - {"status", "info", "layers"} == {"image_base64", "filename"}
    return decoded(data)


def runpod_job(handler: Any, s3: FakeS3, asked: Asked, delivery: str) -> None:
    """One job through RunPod's own run_job, its outputs checked."""
    job_id = f"matrix-{asked.mode}-{asked.trim}-{asked.format}-{delivery}"
    result = asyncio.run(run_job(handler, {"id": job_id, "input": {**asked.input, "delivery": delivery}}))
    assert set(result) == {"output"}, result.get("error")
    output = result["output"]
    INFO.validate(output["info"])
    check_main(delivered(output, asked, delivery, s3, job_id), asked, output["info"])
    if asked.mode == "text":
        assert "layers" not in output
        return
    blended = output["layers"]["blended"]
    check_blended(delivered(blended, asked, delivery, s3, job_id), asked, blended["filename"], output["filename"])


JSON = {"Content-Type": "application/json"}


def alpha_job(url: str, asked: Asked) -> None:
    """One job through the alpha API, its files fetched and checked."""
    reply = http("POST", f"{url}/alpha/v1/txt2img", json.dumps(asked.input).encode(), JSON, timeout=300)
    assert reply.status == 200, reply.body[:300]
    answer = reply.json()
    RESULT.validate(answer)

    def served(entry: dict[str, Any]) -> Image.Image:
        assert re.fullmatch(rf"/alpha/v1/file/alpha_[0-9a-f]{{32}}(_blended)?\.{asked.format}", entry["url"])
        file = http("GET", url + entry["url"])
        assert file.status == 200 and file.headers["Content-Type"] == f"image/{asked.format}"
        return decoded(file.body)

    check_main(served(answer), asked, answer["info"])
    if asked.mode == "text":
        assert "layers" not in answer
        return
    blended = answer["layers"]["blended"]
    check_blended(served(blended), asked, blended["filename"], answer["filename"])


RUNPOD_CASES = [(asked, delivery) for asked in combinations(list(MODES)) for delivery in DELIVERIES]


@pytest.mark.parametrize(
    ("asked", "delivery"),
    RUNPOD_CASES,
    ids=[f"{a.mode}-{a.trim}-{a.format}-{d}" for a, d in RUNPOD_CASES],
)
def test_the_runpod_door_serves_every_combination(
    runpod_handler: Any, s3: tuple[FakeS3, str], asked: Asked, delivery: str
) -> None:
    runpod_job(runpod_handler, s3[0], asked, delivery)


# The modes the other way round: the RunPod cases ended with background, whose samples are still cached.
ALPHA_CASES = combinations(list(reversed(MODES)))


@pytest.mark.parametrize("asked", ALPHA_CASES, ids=[f"{a.mode}-{a.trim}-{a.format}" for a in ALPHA_CASES])
def test_the_alpha_api_serves_every_combination(alpha_api: str, asked: Asked) -> None:
    alpha_job(alpha_api, asked)


def test_the_shipped_background_workflow_takes_trim_and_webp(
    bucket_settings: Settings, s3: tuple[FakeS3, str], tmp_path: Path
) -> None:
    """The combination that failed after the whole job (``internal_error``, HTTP 500): an opaque background has no
    alpha channel to measure once trimmed. The shipped workflow, through each door."""
    runpod_job(make_handler(Generator(bucket_settings)), s3[0], Asked("background", "margin", "webp"), "bucket")
    with ServerThread(create_app(Generator(bucket_settings.replace(serve_dir=tmp_path)))) as server:
        alpha_job(server.url, Asked("background", "trim", "webp"))


def test_the_matrix_is_complete() -> None:
    """The cases above are the whole product of the contract's options (a new mode, format or delivery joins)."""
    assert (tuple(MODES), FORMATS, DELIVERIES) == (DECLARED_MODES, DECLARED_FORMATS, DECLARED_DELIVERIES)
    assert len(RUNPOD_CASES) == 3 * 3 * 2 * 3 and len(ALPHA_CASES) == 3 * 3 * 2
