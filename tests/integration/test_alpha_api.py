"""The local alpha API end to end: a real aiohttp server in front of the real ComfyUI with the test models."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handler.doors.alpha.server import STORE, create_app
from handler.generate import Generator
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.helpers import Reply, RunningComfy, ServerThread, assert_error, decode_png, http
from tests.workflow_mutants import ONLINE, write

pytestmark = pytest.mark.comfyui
TOKEN = "integration-token-0123456789"


def serve(settings: Settings, **changes: Any) -> ServerThread:
    return ServerThread(create_app(Generator(settings.replace(**changes))))


@pytest.fixture(scope="module")
def api(comfy: RunningComfy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with serve(comfy.settings, serve_dir=tmp_path_factory.mktemp("served")) as server:
        yield server


def txt2img(server: ServerThread, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return http(
        "POST",
        f"{server.url}/alpha/v1/txt2img",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **(headers or {})},
        timeout=300,
    )


def test_txt2img_contract_and_the_served_file(api: ServerThread, comfy: RunningComfy) -> None:
    reply = txt2img(api, {"prompt": "a glass apple", "seed": 1234})
    assert reply.status == 200, reply.body[:500]
    body = reply.json()
    assert set(body) == {"url", "filename", "info"}
    name = body["filename"]
    assert body["url"] == f"/alpha/v1/file/{name}"
    info = body["info"]
    assert info["seed"] == 1234 and (info["width"], info["height"]) == (1024, 1024)
    assert info["workflow"]["name"] == "alpha_txt2img" and info["prompt_id"]

    on_disk = api.app[STORE].root / name
    served = http("GET", api.url + body["url"])
    assert served.status == 200 and served.headers["Content-Type"] == "image/png"
    assert served.body == on_disk.read_bytes(), "the served bytes are the file's bytes"
    image = decode_png(served.body)
    assert image.mode == "RGBA" and image.size == (256, 256)
    alpha = np.asarray(image)[..., 3]
    assert alpha.min() < alpha.max(), "alpha must not be constant"
    head = http("HEAD", api.url + body["url"])
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(served.body) and head.body == b""
    # ComfyUI's own copy (<stem>_00001_.png) was deleted once read; only the served copy remains.
    assert comfy.settings.output_dir is not None
    assert list(comfy.settings.output_dir.glob(f"{name.removesuffix('.png')}_*")) == []


def test_health_is_ready_against_the_real_comfyui(api: ServerThread) -> None:
    reply = http("GET", f"{api.url}/alpha/v1/health")
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["status"] == "ready" and body["problems"] == []
    assert body["checks"]["workflow_check"] == "ok" and body["checks"]["comfyui"] == "answers (ComfyUI 0.3.75)"


@pytest.mark.parametrize("mutant", ["missing_layer_model_file", "bad_sampler"])
def test_health_names_what_is_missing(comfy: RunningComfy, tmp_path: Path, mutant: str) -> None:
    mutation, problem = ONLINE[mutant]
    path = write(tmp_path, "variant", mutation)
    with serve(comfy.settings, workflow=path, serve_dir=tmp_path / "served") as server:
        reply = http("GET", f"{server.url}/alpha/v1/health")
    assert reply.status == 503
    body = reply.json()
    assert body["status"] == "not_ready" and any(problem in p for p in body["problems"]), body


def test_health_names_a_missing_checkpoint(comfy: RunningComfy, tmp_path: Path) -> None:
    graph = Workflow.load(comfy.settings.workflow).graph
    loader = next(i for i, n in graph.items() if n["class_type"] == "CheckpointLoaderSimple")
    graph[loader]["inputs"]["ckpt_name"] = "juggernautXL_v9.safetensors"
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(graph))
    with serve(comfy.settings, workflow=path, serve_dir=tmp_path / "served") as server:
        body = http("GET", f"{server.url}/alpha/v1/health").json()
    assert body["status"] == "not_ready"
    assert body["problems"] == [
        f"variant: node {loader} (CheckpointLoaderSimple): ckpt_name "
        "'juggernautXL_v9.safetensors' is not available in ComfyUI (is the model file "
        "missing?); did you mean 'juggernautXL_version6Rundiffusion.safetensors'?"
    ]


def test_concurrent_requests_queue_while_the_loop_keeps_answering(api: ServerThread) -> None:
    replies: list[Reply] = []
    workers = [
        threading.Thread(target=lambda i=i: replies.append(txt2img(api, {"prompt": f"a kite {i}"}))) for i in range(3)
    ]
    for worker in workers:
        worker.start()
    slowest = 0.0
    while any(w.is_alive() for w in workers):
        started = time.monotonic()
        assert http("GET", f"{api.url}/alpha/v1/openapi.json", timeout=10).status == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.2)
    for worker in workers:
        worker.join()
    assert [r.status for r in replies] == [200, 200, 200], [r.body[:300] for r in replies]
    bodies = [r.json() for r in replies]
    assert len({b["filename"] for b in bodies}) == 3 and len({b["info"]["prompt_id"] for b in bodies}) == 3
    # Not a benchmark: a blocked event loop would stall these for a whole job (seconds).
    assert slowest < 2.0, f"the event loop stalled for {slowest:.1f} s"


def test_retention_holds_after_n_plus_5_requests(comfy: RunningComfy, tmp_path: Path) -> None:
    keep = 2
    served = tmp_path / "served"
    with serve(comfy.settings, serve_dir=served, serve_max_files=keep, test_size=64) as server:
        names = []
        for i in range(keep + 5):
            reply = txt2img(server, {"prompt": f"a leaf {i}", "seed": i})
            assert reply.status == 200, reply.body[:300]
            names.append(reply.json()["filename"])
            assert len(list(served.iterdir())) <= keep
        assert sorted(p.name for p in served.iterdir()) == sorted(names[-keep:])
        assert http("GET", f"{server.url}/alpha/v1/file/{names[0]}").status == 404
        assert http("GET", f"{server.url}/alpha/v1/file/{names[-1]}").status == 200


def test_token_refuses_before_any_work(comfy: RunningComfy, tmp_path: Path) -> None:
    served = tmp_path / "served"
    with serve(comfy.settings, serve_dir=served, serve_token=TOKEN, test_size=64) as server:
        before = comfy.history_size()
        refused = txt2img(server, {"prompt": "a moth"})
        assert refused.status == 401
        assert_error(refused.json(), "unauthorized", None)
        assert comfy.history_size() == before and not served.exists()
        accepted = txt2img(server, {"prompt": "a moth"}, {"Authorization": f"Bearer {TOKEN}"})
        assert accepted.status == 200, accepted.body[:300]
        url = f"{server.url}{accepted.json()['url']}"
        assert http("GET", url).status == 401
        assert http("GET", url, headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
