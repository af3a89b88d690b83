"""The acceptance run (``python -m handler.acceptance``) against a loopback stand-in of RunPod's hosted API.

RunPod's public API (``https://api.runpod.ai/v2/<endpoint id>``) cannot be reached from where these tests
run, and a real endpoint costs money, so ``StandIn`` plays it on 127.0.0.1: ``POST /run`` answers
``IN_QUEUE`` with a job id, ``GET /status/<id>`` answers ``IN_PROGRESS`` and then ``COMPLETED`` with the
output (or ``FAILED``), ``POST /runsync`` answers ``IN_PROGRESS`` first, as RunPod does when a job outlasts
its wait. It checks the API key header and serves outputs it builds itself, so the report's every number
is compared with what it served. RunPod's local API and the alpha API are tested for real in
tests/integration/test_acceptance_run.py.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from PIL import Image

from handler.acceptance import report
from handler.acceptance.__main__ import main
from handler.acceptance.checks import CRITERIA, Result
from handler.acceptance.clients import Answer, Http, detect
from handler.acceptance.prompts import DEFAULT_PROMPTS, FIRST_SEED, SIZES, Case, cases
from handler.png import check_rgba
from tests import imports
from tests.helpers import ServerThread

KEY = "rpa_" + uuid.uuid4().hex  # a sentinel: it must reach the header and nowhere else
ENDPOINT_ID = "abc123xyz"


def png(width: int, height: int, alpha: str = "varied") -> bytes:
    rng = np.random.default_rng(width * height)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if alpha != "varied":
        pixels[..., 3] = 255 if alpha == "flat" else 0
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def success(job_input: dict[str, Any], data: bytes) -> dict[str, Any]:
    b64 = base64.b64encode(data).decode()
    info = {"seed": job_input["seed"], "width": job_input["width"], "height": job_input["height"]}
    info["timings_ms"] = {"total": 1234}
    return {"status": "success", "url": "data:image/png;base64," + b64, "image_base64": b64, "info": info}


def good(job_input: dict[str, Any]) -> dict[str, Any]:
    # Served at a quarter of the size, as a test-mode worker does, and says so.
    width, height = job_input["width"] // 4, job_input["height"] // 4
    output = success(job_input, png(width, height))
    output["info"]["test_mode"] = {"width": width, "height": height, "steps": 2}
    return output


class StandIn:
    """RunPod's hosted queue API, played on loopback: see the module docstring."""

    def __init__(self, outcome: Callable[[dict[str, Any]], dict[str, Any] | str]) -> None:
        self.outcome = outcome  # job input -> the handler's output, or an error string (FAILED)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.served: dict[str, dict[str, Any]] = {}  # job id -> the reply that completed it
        self.keys: list[str | None] = []
        self.polls: dict[str, int] = {}
        app = web.Application()
        prefix = f"/v2/{ENDPOINT_ID}"
        app.router.add_post(f"{prefix}/run", self.run)
        app.router.add_post(f"{prefix}/runsync", self.run)
        app.router.add_get(f"{prefix}/status/{{job_id}}", self.status)
        self.server = ServerThread(app)

    async def run(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Authorization"))
        job_id = f"job-{len(self.jobs) + 1}-{uuid.uuid4().hex[:6]}"
        self.jobs[job_id] = (await request.json())["input"]
        self.polls[job_id] = 0
        return web.json_response(
            {"id": job_id, "status": "IN_QUEUE" if request.path.endswith("/run") else "IN_PROGRESS"}
        )

    async def status(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Authorization"))
        job_id = request.match_info["job_id"]
        self.polls[job_id] += 1
        if self.polls[job_id] < 2:
            return web.json_response({"id": job_id, "status": "IN_PROGRESS"})
        number = int(job_id.split("-")[1])
        outcome = self.outcome(self.jobs[job_id])
        reply: dict[str, Any] = {"id": job_id, "delayTime": 100 * number, "executionTime": 10 * number}
        if isinstance(outcome, str):
            reply |= {"status": "FAILED", "error": outcome}
        else:
            reply |= {"status": "COMPLETED", "output": outcome}
        self.served[job_id] = reply
        return web.json_response(reply)


@pytest.fixture
def stand_in(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    fake = StandIn(getattr(request, "param", good))
    with fake.server:
        yield fake


def run(stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("ACCEPTANCE_TEST_KEY", KEY)
    out = tmp_path / "out"
    endpoint = f"{stand_in.server.url}/v2/{ENDPOINT_ID}"
    args = ["--endpoint", endpoint, "--api-key-env", "ACCEPTANCE_TEST_KEY", "--out", str(out), "--poll-interval", "0"]
    code = main([*args, *extra])
    return code, json.loads((out / "report.json").read_text())


def test_run_and_status_polling_passes_and_the_report_matches_what_was_served(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, written = run(stand_in, tmp_path, monkeypatch)
    assert code == 0 and written["passed"] and written["mode"] == "run"
    assert len(written["cases"]) == len(DEFAULT_PROMPTS) == len(stand_in.served)
    assert stand_in.keys and set(stand_in.keys) == {KEY}, "the key goes in RunPod's Authorization header"
    assert all(polls == 2 for polls in stand_in.polls.values()), "polled until COMPLETED"
    for case, (job_id, reply) in zip(written["cases"], stand_in.served.items(), strict=True):
        assert case["job_id"] == job_id and case["status"] == "COMPLETED"
        assert case["input"] == stand_in.jobs[job_id]
        served = base64.b64decode(reply["output"]["image_base64"])
        assert (tmp_path / "out" / case["image"]).read_bytes() == served
        assert case["alpha"] == check_rgba(served, max_uniform=1.0).as_dict()
        assert case["size"] == [
            reply["output"]["info"]["test_mode"]["width"],
            reply["output"]["info"]["test_mode"]["height"],
        ]
        assert (
            case["timings_ms"]["queue"] == reply["delayTime"]
            and case["timings_ms"]["execution"] == reply["executionTime"]
        )
        assert case["timings_ms"]["worker"] == {"total": 1234}
        assert [c["name"] for c in case["criteria"]] == list(CRITERIA) and all(c["ok"] for c in case["criteria"])
    latencies = [case["timings_ms"]["latency"] for case in written["cases"]]
    assert written["latency_ms"]["min"] == min(latencies) and written["latency_ms"]["max"] == max(latencies)
    printed = capsys.readouterr()
    assert printed.out.count("PASS ") == len(DEFAULT_PROMPTS) and "PASSED" in printed.out
    texts = [printed.out, printed.err, *(p.read_text() for p in (tmp_path / "out").glob("report.*"))]
    assert not any(KEY in text for text in texts), "the API key is never printed or written"


def broken(job_input: dict[str, Any]) -> dict[str, Any] | str:
    """One failure per prompt after the first: each breaks exactly one criterion."""
    number = job_input["seed"] - FIRST_SEED
    output = good(job_input)
    info = output["info"]
    if number == 2:
        return "transparency_failed: the output's alpha is 100% opaque"
    if number == 3:
        output["url"] = "data:image/png;base64," + base64.b64encode(png(8, 8)).decode()
    if number == 4:
        output = success(job_input, png(info["test_mode"]["width"], info["test_mode"]["height"], "flat"))
        output["info"]["test_mode"] = info["test_mode"]
    if number == 5:
        info["test_mode"] = {"width": 64, "height": 64}
    if number == 6:
        output["url"] = "https://bucket.example/alpha.png"
    return output


@pytest.mark.parametrize("stand_in", [broken], indirect=True)
def test_each_broken_criterion_fails_the_run(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, written = run(stand_in, tmp_path, monkeypatch)
    assert code == 1 and not written["passed"]
    failed = [sorted(c["name"] for c in case["criteria"] if c["ok"] is False) for case in written["cases"]]
    assert failed == [
        [],
        ["alpha", "base64", "data_uri", "png", "rgba", "size", "status"],  # FAILED: no image at all
        ["base64"],
        ["alpha"],
        ["size"],
        ["base64", "data_uri"],
    ]
    assert [case["passed"] for case in written["cases"]] == [True] + [False] * 5
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<span class="fail">FAIL</span>') >= 5


def test_runsync_falls_back_to_status_polling(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a glass apple\n\n   \na paper crane\n")
    code, written = run(stand_in, tmp_path, monkeypatch, "--mode", "runsync", "--prompts", str(prompts))
    assert code == 0 and written["mode"] == "runsync"
    assert [case["prompt"] for case in written["cases"]] == ["a glass apple", "a paper crane"]
    assert all(polls == 2 for polls in stand_in.polls.values())


def test_the_report_page_shows_each_image_over_three_backgrounds(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(stand_in, tmp_path, monkeypatch)
    html = (tmp_path / "out" / "report.html").read_text()
    for number in range(1, len(DEFAULT_PROMPTS) + 1):
        source = f'src="images/case-{number:02d}.png"'
        assert html.count(source) == 3 and (tmp_path / "out" / "images" / f"case-{number:02d}.png").is_file()
    for background in ("checker", "black", "white"):
        assert html.count(f'class="bg {background}"') == len(DEFAULT_PROMPTS)


def test_a_missing_key_variable_or_empty_prompts_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["--endpoint", "http://127.0.0.1:9/v2/x", "--api-key-env", "NO_SUCH_KEY_VAR", "--out", str(tmp_path)])
    assert "NO_SUCH_KEY_VAR" in str(exc.value)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert main(["--endpoint", "http://127.0.0.1:9/v2/x", "--prompts", str(empty), "--out", str(tmp_path)]) == 2
    assert "holds no prompt" in capsys.readouterr().err


def test_an_unreachable_endpoint_fails_every_case(tmp_path: Path) -> None:
    code = main(["--endpoint", "http://127.0.0.1:9/v2/x", "--out", str(tmp_path), "--poll-interval", "0"])
    written = json.loads((tmp_path / "report.json").read_text())
    assert code == 1 and all(case["error"] and not case["passed"] for case in written["cases"])


async def openapi(request: web.Request) -> web.Response:
    return web.json_response({"openapi": "3.1.0"})


def test_detect_reads_the_url_then_asks() -> None:
    app = web.Application()
    app.router.add_get("/alpha/v1/openapi.json", openapi)
    with ServerThread(app) as alpha, ServerThread(web.Application()) as local:
        http = Http({}, 10)
        assert detect("https://api.runpod.ai/v2/abc123", http) == "run"
        assert detect(alpha.url, http) == "alpha"
        assert detect(local.url, http) == "runsync"


def test_cases_cycle_the_sizes_and_seeds() -> None:
    made = cases(("a", "b", "c", "d"))
    assert [(c.width, c.height) for c in made] == [*SIZES, SIZES[0]]
    assert [c.seed for c in made] == [FIRST_SEED + n for n in (1, 2, 3, 4)]


def test_cold_start_is_a_first_answer_far_slower_than_the_rest() -> None:
    def results(*latencies: int) -> list[Result]:
        return [
            Result(Case(n, "p", n, 64, 64), Answer("COMPLETED", {}, None, None, ms)) for n, ms in enumerate(latencies)
        ]

    cold = report.cold_start(results(95_000, 9_000, 10_000, 11_000))
    assert cold["detected"] is True and cold["extra_ms"] == 85_000 and cold["warm_median_ms"] == 10_000
    assert report.cold_start(results(12_000, 9_000, 10_000, 11_000))["detected"] is False
    assert report.cold_start(results(5_000))["detected"] is None


def test_nothing_on_a_jobs_path_imports_the_acceptance_run() -> None:
    for entry in ("handler.__main__", "handler.supervisor", "handler.doors.alpha.server"):
        loaded = imports.loaded_by(entry)
        assert not [module for module in loaded if module.startswith("handler.acceptance")], entry
    importers = [
        m for m, targets in imports.graph().items() if any(t.startswith("handler.acceptance") for t in targets)
    ]
    assert all(m.startswith("handler.acceptance") for m in importers), importers
