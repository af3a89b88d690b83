"""tests/helpers.py ``assert_error``: it takes every producer's error body, and it refuses a wrong shape."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runpod.serverless.modules.rp_job import run_job

from handler.doors.runpod.worker import make_handler
from handler.errors import AlphaError, ExecutionError, InputError, StartupError, error_body
from handler.generate import Generator
from handler.settings import Settings
from tests.helpers import assert_error, free_port


def door_errors() -> list[AlphaError]:
    """One error of every class a door can answer with."""
    found: list[AlphaError] = []
    todo: list[type[AlphaError]] = [AlphaError]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if not issubclass(cls, StartupError) and cls is not ExecutionError:
            found.append(cls("something went wrong"))
    return found


@pytest.mark.parametrize("exc", door_errors(), ids=lambda e: type(e).__name__)
def test_every_error_class_has_the_shape(exc: AlphaError) -> None:
    assert assert_error(error_body(exc), exc.code, None, words="went wrong") == error_body(exc)


def test_an_execution_error_carries_its_node() -> None:
    exc = ExecutionError("node 7 failed", node_id="7", node_type="KSampler", exception_type="RuntimeError")
    body = assert_error(error_body(exc), "execution_error", None, words="node 7")
    assert (body["node_id"], body["node_type"], body["exception_type"]) == ("7", "KSampler", "RuntimeError")


def job(job_input: Any) -> dict[str, Any]:
    """A job through RunPod's run_job and our handler, with nothing listening where ComfyUI should be."""
    handler = make_handler(Generator(Settings().replace(comfyui_port=free_port())))
    result: dict[str, Any] = asyncio.run(run_job(handler, {"id": "job-1", "input": job_input}))
    return result


def test_runpod_job_results() -> None:
    body = assert_error(job({"prompt": " "}), "invalid_input", "prompt", words="must not be empty")
    assert body == error_body(InputError("'prompt' must not be empty", field="prompt"))
    gone = job({"prompt": "a cat"})
    assert gone["stopPod"] is True
    assert_error(gone, "comfyui_unavailable", None, words="nothing listens")


RUNSYNC = {"id": "sync-1", "status": "FAILED", "error": "invalid_input: 'seed' must be an integer, got a string"}


def test_a_runsync_reply() -> None:
    assert assert_error(RUNSYNC, "invalid_input", "seed", words="must be an integer") is RUNSYNC


GOOD = error_body(InputError("'seed' must be an integer, got a string", field="seed"))
NODE = error_body(ExecutionError("node 7 failed", node_id="7", node_type="KSampler", exception_type="RuntimeError"))
JOB = {"output": {k: v for k, v in GOOD.items() if k != "error"}, "error": GOOD["error"]}
GONE = error_body(AlphaError("ComfyUI went away"))
GONE.update(code="comfyui_unavailable", error="comfyui_unavailable: ComfyUI went away")
GONE_JOB = {"output": {k: v for k, v in GONE.items() if k != "error"}, "error": GONE["error"], "stopPod": True}

# (what is wrong, body, code, field, words): each must fail.
WRONG: list[tuple[str, Any, str, str | None, str | None]] = [
    ("not an object", ["invalid_input"], "invalid_input", "seed", None),
    ("no error key", {k: v for k, v in GOOD.items() if k != "error"}, "invalid_input", "seed", None),
    ("no field key", {k: v for k, v in GOOD.items() if k != "field"}, "invalid_input", "seed", None),
    ("an extra key", {**GOOD, "detail": "x"}, "invalid_input", "seed", None),
    ("status not error", {**GOOD, "status": "failed"}, "invalid_input", "seed", None),
    ("error not code: message", {**GOOD, "error": "invalid_input: something else"}, "invalid_input", "seed", None),
    ("empty message", {**GOOD, "message": "", "error": "invalid_input: "}, "invalid_input", "seed", None),
    ("another code", GOOD, "invalid_workflow", "seed", None),
    ("not a code at all", {**GOOD, "code": "bad_input", "error": "bad_input: x"}, "bad_input", "seed", None),
    ("another field", GOOD, "invalid_input", "prompt", None),
    ("field expected None", GOOD, "invalid_input", None, None),
    ("words missing", GOOD, "invalid_input", "seed", "must not be empty"),
    ("node keys without execution_error", {**GOOD, "node_id": None}, "invalid_input", "seed", None),
    (
        "execution_error without node keys",
        {**GONE, "code": "execution_error", "error": "execution_error: ComfyUI went away"},
        "execution_error",
        None,
        None,
    ),
    (
        "execution_error lacking node_type",
        {k: v for k, v in NODE.items() if k != "node_type"},
        "execution_error",
        None,
        None,
    ),
    ("node_id not a string", {**NODE, "node_id": 7}, "execution_error", None, None),
    ("job: error left in the output", {**JOB, "output": GOOD}, "invalid_input", "seed", None),
    ("job: no error", {"output": JOB["output"]}, "invalid_input", "seed", None),
    ("job: stopPod for a client error", {**JOB, "stopPod": True}, "invalid_input", "seed", None),
    ("job: no stopPod for comfyui_unavailable", {**GONE_JOB, "stopPod": None}, "comfyui_unavailable", None, None),
    ("job: stopPod missing", {k: v for k, v in GONE_JOB.items() if k != "stopPod"}, "comfyui_unavailable", None, None),
    (
        "job: refresh_worker left in",
        {**JOB, "output": {**JOB["output"], "refresh_worker": True}},
        "invalid_input",
        "seed",
        None,
    ),
    ("job: an extra key", {**JOB, "id": "job-1"}, "invalid_input", "seed", None),
    ("runsync: another code", RUNSYNC, "invalid_workflow", None, None),
    ("runsync: field not named", RUNSYNC, "invalid_input", "prompt", None),
    ("runsync: words missing", RUNSYNC, "invalid_input", "seed", "must not be empty"),
    ("runsync: an extra key", {**RUNSYNC, "delayTime": 3}, "invalid_input", "seed", None),
    ("runsync: no message", {**RUNSYNC, "error": "invalid_input: "}, "invalid_input", None, None),
    ("runsync: output too", {**RUNSYNC, "output": GOOD}, "invalid_input", "seed", None),
]


def test_the_good_bodies_pass() -> None:
    assert_error(GOOD, "invalid_input", "seed", words="must be an integer")
    assert_error(NODE, "execution_error", None)
    assert_error(JOB, "invalid_input", "seed", words="must be an integer")
    assert_error(GONE_JOB, "comfyui_unavailable", None)


@pytest.mark.parametrize(("body", "code", "field", "words"), [w[1:] for w in WRONG], ids=[w[0] for w in WRONG])
def test_a_wrong_shape_fails(body: Any, code: str, field: str | None, words: str | None) -> None:
    with pytest.raises(AssertionError):
        assert_error(body, code, field, words=words)
