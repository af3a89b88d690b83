"""The input schema and the doors decide alike. Schemathesis generates job inputs from the schema, valid ones and
invalid ones; each goes to a door (the alpha API over HTTP with its served OpenAPI document; the RunPod handler
with the same contract, ``delivery`` included), and the test fails wherever the door's decision (refused with
``invalid_input``, or taken: then ComfyUI, whose port is closed here, answers ``comfyui_unavailable``) differs from
the schema's, by a JSON Schema validator.

Two rules are beyond what a schema can state, and only these are allowed to differ: an input image's content
(an image field's string that the schema takes is given a real image's base64 here, fitted to the size the input
asks for, so the rest of the input is what is judged) and ComfyUI's prompt weights and depth of parentheses (a
refusal that ``prompt_syntax.check`` gives in the same words)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from handler import prompt_syntax
from handler.doors.alpha import openapi
from handler.doors.alpha.server import create_app
from handler.doors.runpod.worker import handle_job
from handler.errors import InputError
from handler.fields import ImageData, Text
from handler.generate import Generator
from handler.paths import REPO
from handler.request import CONTRACT, input_schema
from handler.settings import Settings
from tests.helpers import ServerThread, free_port, http
from tests.layer_images import background, encoded, foreground, offline

NAMED = tuple(REPO / "workflows" / f"{name}.json" for name in ("alpha_txt2img", "alpha_txt2img_conv"))
EXAMPLES = 100  # per door and generation mode
IMAGES = {spec.name: spec for spec in CONTRACT if isinstance(spec, ImageData)}
TEXTS = {spec.name for spec in CONTRACT if isinstance(spec, Text)}
TXT2IMG = f"{openapi.PREFIX}/txt2img"

# What a door decided: taken (None) or refused, with the refusal's field and message.
Decision = tuple[str, str | None, str] | None
Door = Callable[[Any], Decision]


def generator_for(tmp_path: Path) -> Generator:
    """Every field offered (named workflows, a bucket for ``delivery: bucket``), layer modes counted as served,
    and no ComfyUI: a taken job fails at once with ``comfyui_unavailable``. Test mode, so a layer job's image is
    fitted at 64 px."""
    settings = Settings().replace(
        comfyui_port=free_port(),
        serve_dir=tmp_path / "served",
        workflow_allowlist=NAMED,
        test_models=True,
        test_size=64,
        bucket_endpoint_url="http://127.0.0.1:9",
        bucket_access_key_id="AKIDAGREEMENT",
        bucket_secret_access_key="s3cr3t-" * 4,
        bucket_name="agreement",
    )
    return offline(Generator(settings))


def decided(code: str, status_ok: bool, body: dict[str, Any]) -> Decision:
    """A door's answer as a decision; anything but ``invalid_input`` or ``comfyui_unavailable`` is a failure."""
    if body.get("code") == "comfyui_unavailable" and status_ok:
        return None
    assert body.get("code") == "invalid_input", body
    return code, body.get("field"), str(body.get("message"))


@pytest.fixture(scope="module")
def alpha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Door]]:
    """The alpha API on a real aiohttp server, and the OpenAPI document it serves."""
    generator = generator_for(tmp_path_factory.mktemp("agreement-alpha"))
    with ServerThread(create_app(generator)) as server:
        document = http("GET", f"{server.url}{openapi.PREFIX}/openapi.json").json()

        def door(body: Any) -> Decision:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            reply = http("POST", server.url + TXT2IMG, raw, {"Content-Type": "application/json"}, timeout=30)
            assert reply.status in (400, 503), (reply.status, reply.body[:300])
            return decided("invalid_input", reply.status == 503, reply.json())

        yield document, door


@pytest.fixture(scope="module")
def runpod(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Door]:
    """The RunPod handler, and its contract (``delivery`` included) in the alpha API's document, so schemathesis
    reads it the same way."""
    generator = generator_for(tmp_path_factory.mktemp("agreement-runpod"))
    document = openapi.document(token_required=False, sizes=generator.sizes(), workflows=list(generator.allowed))
    request_body = document["paths"][TXT2IMG]["post"]["requestBody"]["content"]["application/json"]
    request_body["schema"] = input_schema(generator.sizes(), list(generator.allowed))

    def door(body: Any) -> Decision:
        if isinstance(body, bytes):  # RunPod's API refuses a body that is not JSON; it never reaches the handler
            assume(False)
        output = handle_job(generator, {"id": "agreement", "input": body})
        return decided("invalid_input", True, output)

    return document, door


@functools.cache
def image_for(field: str, size: tuple[int, int] | None) -> str:
    """A real image for the field (a transparent subject for ``foreground``), in the aspect of the asked size."""
    shape = (128, 128) if size is None else (size[0] // 8, size[1] // 8)
    return encoded(foreground(shape) if IMAGES[field].need_alpha else background(shape))


def with_real_images(body: Any, properties: dict[str, Any]) -> Any:
    """Each image field whose value the schema takes (a string within its lengths) given a real image's base64:
    the schema's verdict stays, and the door judges the rest of the input."""
    if not isinstance(body, dict):
        return body
    sides = [body.get("width"), body.get("height")]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and 64 <= v <= 8192 for v in sides)
    size = (int(sides[0] or 0), int(sides[1] or 0)) if numbers else None
    real = dict(body)
    for name in IMAGES.keys() & body.keys():
        fragment = properties[name]
        value = body[name]
        if isinstance(value, str) and fragment["minLength"] <= len(value) <= fragment["maxLength"]:
            real[name] = image_for(name, size)
    return real


def unstateable(body: dict[str, Any], decision: Decision) -> bool:
    """The refusal is one of the prompt rules no schema states: ``prompt_syntax.check`` refuses the field's text in
    the same words."""
    if decision is None or decision[1] not in TEXTS:
        return False
    field = str(decision[1])
    try:
        prompt_syntax.check(str(body[field]).strip(), field)
    except InputError as exc:
        return exc.message == decision[2]
    return False


def check(document: dict[str, Any], door: Door, body: Any) -> None:
    schema = document["paths"][TXT2IMG]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator(schema)
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError:
            assert door(body) is not None, "a body that is not JSON is refused"  # and no schema takes it
            return
    real = with_real_images(body, schema["properties"])
    try:
        verdict = validator.is_valid(real)
    except ValueError:  # a lone surrogate: no text a JSON Schema validator can read, nor the doors (refused)
        assume(False)
    assert validator.is_valid(body) is verdict, "the real images leave the schema's verdict as it was"
    decision = door(real)
    if verdict and decision is not None:
        assert unstateable(real, decision), f"the schema takes it, the door refuses it: {decision}; input {real!r:.600}"
    if not verdict:
        errors = [f"{e.instance_path}: {e.message}"[:200] for e in validator.iter_errors(real)]
        assert decision is not None, f"the schema refuses it ({errors}), the door takes it; input {real!r:.600}"


def bodies(document: dict[str, Any], mode: GenerationMode) -> st.SearchStrategy[Any]:
    operation = schemathesis.openapi.from_dict(document)[TXT2IMG]["POST"]
    return operation.as_strategy(generation_mode=mode).map(lambda case: case.body)


AGREEMENT = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("door_name", ["alpha", "runpod"])
def test_the_door_decides_as_the_schema_does(
    door_name: str, mode: GenerationMode, request: pytest.FixtureRequest
) -> None:
    document, door = request.getfixturevalue(door_name)

    @AGREEMENT
    @given(body=bodies(document, mode))
    def agree(body: Any) -> None:
        check(document, door, body)

    agree()
