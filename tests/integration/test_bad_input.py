"""The bad-input corpus (tests/cases.py) through every door on the real ComfyUI: the RunPod handler under
RunPod's own run_job, RunPod's local API (`--rp_serve_api`, /runsync) and the local alpha API. Each case is
refused with a 4xx-class answer and a stable code, and none submits a ComfyUI job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from runpod.serverless.modules.rp_job import run_job

from handler.doors.alpha.server import create_app
from handler.doors.runpod.worker import make_handler
from handler.generate import Generator
from tests.cases import BAD_BODIES, CORPUS, RUNPOD_BAD_ENVELOPES, BadBody, BadInput
from tests.helpers import Reply, RunningComfy, ServerThread, assert_error, http

pytestmark = pytest.mark.comfyui
JSON = {"Content-Type": "application/json"}


def comfy_jobs(comfy: RunningComfy) -> tuple[int, int]:
    """Prompts ComfyUI has run, and prompts it has queued or is running."""
    queue = comfy.client._json("GET", "/queue")
    return comfy.history_size(), len(queue["queue_running"]) + len(queue["queue_pending"])


def uploads(comfy: RunningComfy) -> list[str]:
    folder = comfy.settings.input_dir
    return sorted(p.name for p in folder.rglob("*") if p.is_file())  # ComfyUI makes empty folders there (3d/)


@pytest.fixture
def nothing_submitted(comfy: RunningComfy) -> Iterator[None]:
    before = comfy_jobs(comfy)
    assert before[1] == 0, "ComfyUI must be idle for this check"
    yield
    assert comfy_jobs(comfy) == before, "no ComfyUI job may be submitted for bad input"
    assert uploads(comfy) == [], "no input image may be left in ComfyUI's input folder"


@pytest.fixture(scope="module")
def alpha_api(comfy: RunningComfy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = comfy.settings.replace(serve_dir=tmp_path_factory.mktemp("served"))
    with ServerThread(create_app(Generator(settings))) as server:
        yield server


@pytest.fixture(scope="module")
def handler(comfy: RunningComfy) -> Callable[[dict[str, Any]], Any]:
    return make_handler(Generator(comfy.settings))


def encode(value: Any) -> bytes:
    # json.dumps writes lone surrogates as \ud800 escapes (ASCII output) and NaN/Infinity as Python's json does.
    return json.dumps(value).encode()


def runsync(url: str, body: bytes, content_type: str = "application/json") -> Reply:
    return http("POST", f"{url}/runsync", body, {"Content-Type": content_type}, timeout=60)


@pytest.mark.usefixtures("nothing_submitted")
@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_runpod_handler(handler: Callable[[dict[str, Any]], Any], case: BadInput) -> None:
    result = asyncio.run(run_job(handler, {"id": f"bad-{case.id}", "input": case.job_input}))
    assert_error(result, "invalid_input", case.field, words=case.words)
    assert "stopPod" not in result


@pytest.mark.usefixtures("nothing_submitted")
@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_runpod_local_api(serve_api: str, case: BadInput) -> None:
    reply = runsync(serve_api, encode({"input": case.job_input}))
    assert reply.status == case.runpod_status, reply.body[:300]
    body = reply.json()
    if reply.status == 200:
        assert body["status"] == "FAILED", body
        assert_error(body, "invalid_input", case.field, words=case.words)  # the field named in the message
    else:  # RunPod's request model refused it: the input must be an object
        assert body["detail"][0]["loc"] == ["body", "input"] and body["detail"][0]["type"] == "dict_type"


@pytest.mark.usefixtures("nothing_submitted")
@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_alpha_api(alpha_api: ServerThread, case: BadInput) -> None:
    reply = http("POST", f"{alpha_api.url}/alpha/v1/txt2img", encode(case.job_input), JSON, timeout=60)
    assert reply.status == 400, reply.body[:300]
    assert_error(reply.json(), "invalid_input", case.field, words=case.words)


@pytest.mark.usefixtures("nothing_submitted")
@pytest.mark.parametrize("case", BAD_BODIES, ids=[b.id for b in BAD_BODIES])
def test_raw_bodies_on_the_alpha_api(alpha_api: ServerThread, case: BadBody) -> None:
    reply = http("POST", f"{alpha_api.url}/alpha/v1/txt2img", case.body, JSON, timeout=60)
    assert reply.status == case.alpha_status, reply.body[:300]
    assert_error(reply.json(), case.alpha_code, case.alpha_field)


@pytest.mark.usefixtures("nothing_submitted")
@pytest.mark.parametrize("case", BAD_BODIES, ids=[b.id for b in BAD_BODIES])
def test_raw_bodies_as_runpod_input(serve_api: str, case: BadBody) -> None:
    reply = runsync(serve_api, b'{"input": ' + case.body + b"}")
    assert reply.status == case.runpod_status, reply.body[:300]
    body = reply.json()
    if reply.status == 200:
        assert body["status"] == "FAILED", body
        assert_error(body, "invalid_input", None)
    else:
        assert 400 <= reply.status < 500 and "detail" in body


@pytest.mark.usefixtures("nothing_submitted")
@pytest.mark.parametrize(("name", "body"), RUNPOD_BAD_ENVELOPES, ids=[e[0] for e in RUNPOD_BAD_ENVELOPES])
def test_bad_envelopes_on_the_runpod_local_api(serve_api: str, name: str, body: bytes) -> None:
    reply = runsync(serve_api, body)
    assert reply.status == 422, reply.body[:300]
    assert reply.json()["detail"], name


@pytest.mark.usefixtures("nothing_submitted")
def test_a_form_body_on_the_runpod_local_api(serve_api: str) -> None:
    reply = runsync(serve_api, b"input=a+glass+apple", "application/x-www-form-urlencoded")
    assert reply.status == 422, reply.body[:300]
