"""The acceptance run (``python -m handler.acceptance``) against a loopback stand-in of RunPod's hosted API.

RunPod's public API (``https://api.runpod.ai/v2/<endpoint id>``) cannot be reached from where these tests
run, and a real endpoint costs money, so ``StandIn`` plays it on 127.0.0.1: ``POST /run`` answers
``IN_QUEUE`` with a job id, ``GET /status/<id>`` answers ``IN_PROGRESS`` and then ``COMPLETED`` with the
output (or ``FAILED``), ``POST /runsync`` answers ``IN_PROGRESS`` first, as RunPod does when a job outlasts
its wait. It checks the API key header and serves outputs it builds itself, honouring the job's options (trim,
format, delivery, layer mode) as a test-mode worker does, so the report's every number is compared with what it
served. RunPod's local API and the alpha API are tested for real in tests/integration/test_acceptance_run.py;
endpoints that misbehave, in test_acceptance_hostile.py.
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
from handler.acceptance.clients import Answer, detect
from handler.acceptance.options import IMAGE_FIELDS, TRIM_MARGIN, data_uri, picture, subject
from handler.acceptance.prompts import DEFAULT_PROMPTS, FIRST_SEED, SIZES, Case, cases
from handler.acceptance.results import CRITERIA, Result
from handler.acceptance.transport import Http
from handler.asset import crop_box
from handler.png import alpha_stats
from tests import imports
from tests.helpers import ServerThread

KEY = "rpa_" + uuid.uuid4().hex  # a sentinel: it must reach the header and nowhere else
ENDPOINT_ID = "abc123xyz"
OPTIONS = 4  # trim + webp, delivery base64, mode foreground, mode background
JOBS = len(DEFAULT_PROMPTS) + OPTIONS


def canvas(width: int, height: int, alpha: str = "varied") -> Image.Image:
    """Noise with a varied alpha inside a centred box and 0 around it (something for ``trim`` to cut), or
    ``flat`` (all opaque), or opaque RGB for a background."""
    rng = np.random.default_rng(width * height)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if alpha == "rgb":
        return Image.fromarray(pixels[..., :3], "RGB")
    pixels[..., 3] = 255 if alpha == "flat" else pixels[..., 3]
    if alpha == "varied":
        pixels[: height // 8, :, 3] = pixels[-height // 8 :, :, 3] = 0
        pixels[:, : width // 8, 3] = pixels[:, -width // 8 :, 3] = 0
    return Image.fromarray(pixels, "RGBA")


def encoded(image: Image.Image, format: str = "png") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", lossless=True) if format == "webp" else image.save(buffer, "PNG")
    return buffer.getvalue()


def png(width: int, height: int, alpha: str = "varied") -> bytes:
    return encoded(canvas(width, height, alpha))


def delivered(data: bytes, format: str, delivery: str) -> dict[str, str]:
    b64 = base64.b64encode(data).decode()
    return {"image_base64": b64} | ({} if delivery == "base64" else {"url": f"data:image/{format};base64,{b64}"})


def served(job_input: dict[str, Any], alpha: str = "varied") -> dict[str, Any]:
    """What a test-mode worker answers: the job run at a quarter of the size asked (and saying so), with every
    option of the job honoured."""
    width, height = job_input["width"] // 4, job_input["height"] // 4
    mode, format = job_input.get("mode", "text"), job_input.get("format", "png")
    delivery = job_input.get("delivery", "inline")
    image = canvas(width, height, "rgb" if mode == "background" else alpha)
    stats = alpha_stats(image.convert("RGBA"))
    info = {"seed": job_input["seed"], "width": job_input["width"], "height": job_input["height"], "mode": mode}
    info |= {"format": format, "mime_type": f"image/{format}", "alpha": stats.as_dict(), "timings_ms": {"total": 1234}}
    info["test_mode"] = {"width": width, "height": height, "steps": 2}
    if job_input.get("trim"):
        assert stats.bbox is not None
        info["crop"] = list(crop_box(stats.bbox, job_input.get("trim_margin", 0), (width, height)))
        image = image.crop(info["crop"])
    key = uuid.uuid4().hex
    output: dict[str, Any] = {"status": "success", **delivered(encoded(image, format), format, delivery)}
    output |= {"filename": f"alpha_{key}.{format}", "info": info}
    if mode != "text":
        blended = encoded(Image.new("RGB", (width, height), (120, 80, 40)), format)
        output["layers"] = {
            "blended": {**delivered(blended, format, delivery), "filename": f"alpha_{key}_blended.{format}"}
        }
    return output


class StandIn:
    """RunPod's hosted queue API, played on loopback: see the module docstring."""

    def __init__(self, outcome: Callable[[dict[str, Any]], dict[str, Any] | str]) -> None:
        self.outcome = outcome  # job input -> the handler's output, or an error string (FAILED)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.served: dict[str, dict[str, Any]] = {}  # job id -> the reply that completed it
        self.keys: list[str | None] = []
        self.polls: dict[str, int] = {}
        app = web.Application(client_max_size=2**24)
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
    fake = StandIn(getattr(request, "param", served))
    with fake.server:
        yield fake


def run(stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("ACCEPTANCE_TEST_KEY", KEY)
    out = tmp_path / "out"
    endpoint = f"{stand_in.server.url}/v2/{ENDPOINT_ID}"
    args = ["--endpoint", endpoint, "--api-key-env", "ACCEPTANCE_TEST_KEY", "--out", str(out), "--poll-interval", "0"]
    code = main([*args, *extra])
    return code, json.loads((out / "report.json").read_text())


def decoded_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def assert_case_is_what_was_served(out: Path, case: dict[str, Any], job: dict[str, Any], reply: dict[str, Any]) -> None:
    """One case of the report against the job the stand-in received and the reply it served."""
    output = reply["output"]
    assert case["job_id"] == reply["id"] and case["status"] == "COMPLETED" and case["outcome"] == "pass"
    field = IMAGE_FIELDS.get(job.get("mode", "text"))
    if field:  # a layer mode's image: in the report by its file, which holds what was sent
        assert case["input"] == {**job, field: f"<{len(job[field])} characters: {case['input_image']}>"}
        assert data_uri((out / case["input_image"]).read_bytes()) == job[field]
    else:
        assert case["input"] == job and case["input_image"] is None
    sent = base64.b64decode(output["image_base64"])
    assert (out / case["image"]).read_bytes() == sent and case["image"].endswith("." + job.get("format", "png"))
    image = decoded_image(sent)
    assert case["size"] == list(image.size)
    assert case["alpha"] == (None if image.mode == "RGB" else alpha_stats(image).as_dict())
    if "layers" in output:
        assert (out / case["blended"]).read_bytes() == base64.b64decode(output["layers"]["blended"]["image_base64"])
    else:
        assert case["blended"] is None
    assert (
        case["timings_ms"]["queue"] == reply["delayTime"] and case["timings_ms"]["execution"] == reply["executionTime"]
    )
    assert case["timings_ms"]["worker"] == {"total": 1234}
    assert [c["name"] for c in case["criteria"]] == list(CRITERIA) and all(
        c["ok"] is not False for c in case["criteria"]
    )


def test_run_and_status_polling_passes_and_the_report_matches_what_was_served(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, written = run(stand_in, tmp_path, monkeypatch)
    assert code == 0 and written["passed"] and written["mode"] == "run" and written["not_offered"] == []
    assert len(written["cases"]) == JOBS == len(stand_in.served)
    assert [case["kind"] for case in written["cases"]] == ["prompt"] * len(DEFAULT_PROMPTS) + ["option"] * OPTIONS
    assert stand_in.keys and set(stand_in.keys) == {KEY}, "the key goes in RunPod's Authorization header"
    assert all(polls == 2 for polls in stand_in.polls.values()), "polled until COMPLETED"
    for case, (job_id, reply) in zip(written["cases"], stand_in.served.items(), strict=True):
        assert_case_is_what_was_served(tmp_path / "out", case, stand_in.jobs[job_id], reply)
    prompts = written["cases"][: len(DEFAULT_PROMPTS)]
    latencies = [case["timings_ms"]["latency"] for case in prompts]
    assert written["latency_ms"]["count"] == len(DEFAULT_PROMPTS), "latency over the prompts' jobs"
    assert written["latency_ms"]["min"] == min(latencies) and written["latency_ms"]["max"] == max(latencies)
    printed = capsys.readouterr()
    assert printed.out.count("PASS ") == JOBS and "PASSED" in printed.out
    texts = [printed.out, printed.err, *(p.read_text() for p in (tmp_path / "out").glob("report.*"))]
    assert not any(KEY in text for text in texts), "the API key is never printed or written"


def test_the_options_jobs_ask_for_what_the_worker_offers(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(stand_in, tmp_path, monkeypatch)
    asked = list(stand_in.jobs.values())[len(DEFAULT_PROMPTS) :]
    assert [{k: v for k, v in job.items() if k not in ("prompt", "seed", *IMAGE_FIELDS)} for job in asked] == [
        {"width": 1024, "height": 1024, "trim": True, "trim_margin": TRIM_MARGIN, "format": "webp"},
        {"width": 832, "height": 1216, "delivery": "base64"},
        {"width": 1216, "height": 832, "mode": "foreground"},
        {"width": 832, "height": 1216, "mode": "background"},
    ]
    assert asked[2]["background"] == data_uri(picture()) and asked[3]["foreground"] == data_uri(subject())
    background, foreground = decoded_image(picture()), decoded_image(subject())
    assert background.mode == "RGB" and background.size == (152, 104), "1216x832's aspect, at least 64 px a side"
    assert foreground.mode == "RGBA" and foreground.size == (104, 152)
    assert foreground.getchannel("A").getextrema() == (0, 255), "a transparent subject: its alpha is not flat"
    assert [job["seed"] for job in asked] == [FIRST_SEED + n for n in range(len(DEFAULT_PROMPTS) + 1, JOBS + 1)]


def broken(job_input: dict[str, Any]) -> dict[str, Any] | str:
    """One failure per job after the first: each breaks exactly one criterion."""
    number = job_input["seed"] - FIRST_SEED
    output = served(job_input)
    info = output["info"]
    if number == 2:
        return "transparency_failed: the output's alpha is 100% opaque"
    if number == 3:
        output["url"] = "data:image/png;base64," + base64.b64encode(png(8, 8)).decode()
    if number == 4:
        output = served(job_input, alpha="flat")
    if number == 5:
        info["test_mode"] = {"width": 64, "height": 64}
    if number == 6:
        output["url"] = "https://bucket.example/alpha.png"
    if number == 7:  # trim + webp: answered as a PNG, and cut one pixel short
        served_png = served({**job_input, "format": "png"})
        output = served_png | {"url": served_png["url"].replace("image/png", "image/webp")}
        output["info"] = info
        info["crop"][2] -= 1
    if number == 8:  # delivery base64: answered inline
        output["url"] = "data:image/png;base64," + output["image_base64"]
    if number == 9:  # mode foreground: info says text
        info["mode"] = "text"
    if number == 10:  # mode background: no blended picture
        del output["layers"]
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
        ["alpha", "base64", "data_uri", "format", "mode", "rgba", "size", "status"],  # FAILED: no image at all
        ["base64"],
        ["alpha"],
        ["size"],
        ["base64", "data_uri"],
        ["format", "size"],
        ["data_uri"],
        ["mode"],
        ["layers"],
    ]
    assert [case["outcome"] for case in written["cases"]] == ["pass"] + ["fail"] * 9
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<span class="fail">FAIL</span>') >= 9 + 1


def no_layer_modes(job_input: dict[str, Any]) -> dict[str, Any] | str:
    if job_input.get("mode", "text") != "text":
        return f"mode_unavailable: mode '{job_input['mode']}' is turned off on this worker"
    return served(job_input)


@pytest.mark.parametrize("stand_in", [no_layer_modes], indirect=True)
def test_a_layer_mode_the_endpoint_does_not_serve_is_not_offered_not_failed(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, written = run(stand_in, tmp_path, monkeypatch)
    assert code == 0 and written["passed"] and written["not_offered"] == ["mode foreground", "mode background"]
    assert [case["outcome"] for case in written["cases"]] == ["pass"] * (JOBS - 2) + ["not offered"] * 2
    skipped = written["cases"][-1]
    assert (
        skipped["not_offered"]
        == "mode background is not offered: mode_unavailable: mode 'background' is turned off on this worker"
    )
    assert (
        skipped["criteria"] == [] and skipped["image"] is None and skipped["input_image"] == "images/case-10-input.png"
    )
    printed = capsys.readouterr().out
    assert printed.count("SKIP ") == 2 and "PASSED; not offered: mode foreground, mode background;" in printed
    assert "not offered" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("stand_in", [lambda job_input: "mode_unavailable: no such mode"], indirect=True)
def test_mode_unavailable_for_a_text_job_is_a_failure(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, written = run(stand_in, tmp_path, monkeypatch)
    assert code == 1 and [case["outcome"] for case in written["cases"]] == ["fail"] * (JOBS - 2) + ["not offered"] * 2


def test_runsync_falls_back_to_status_polling(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a glass apple\n\n   \na paper crane\n")
    code, written = run(stand_in, tmp_path, monkeypatch, "--mode", "runsync", "--prompts", str(prompts))
    assert code == 0 and written["mode"] == "runsync"
    assert [case["prompt"] for case in written["cases"][:2]] == ["a glass apple", "a paper crane"]
    assert len(written["cases"]) == 2 + OPTIONS and written["passed"]
    assert all(polls == 2 for polls in stand_in.polls.values())


def test_the_report_page_shows_each_image_over_three_backgrounds(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """And a layer mode's blended picture and input image, once each."""
    _, written = run(stand_in, tmp_path, monkeypatch)
    html = (tmp_path / "out" / "report.html").read_text()
    for case in written["cases"]:
        shown = {"image": 3, "blended": 1 if case["blended"] else 0, "input_image": 1 if case["input_image"] else 0}
        for name, times in shown.items():
            if times:
                assert html.count(f'src="{case[name]}"') == times and (tmp_path / "out" / case[name]).is_file()
    layered = [case for case in written["cases"] if case["input"].get("mode") in IMAGE_FIELDS]
    assert [case["blended"] for case in layered] == ["images/case-09-blended.png", "images/case-10-blended.png"]
    assert [case["input_image"] for case in layered] == ["images/case-09-input.png", "images/case-10-input.png"]
    assert written["cases"][6]["image"] == "images/case-07.webp"
    for background in ("black", "white"):
        assert html.count(f'class="bg {background}"') == JOBS + (2 if background == "white" else 0)
    assert html.count('class="bg checker"') == JOBS + 2


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
        assert detect("https://api.runpod.ai/v2/abc123", Http("https://api.runpod.ai", {})) == "run"
        assert detect(alpha.url, Http(alpha.url, {})) == "alpha"
        assert detect(local.url, Http(local.url, {})) == "runsync"


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
