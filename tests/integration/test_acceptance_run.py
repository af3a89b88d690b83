"""The acceptance run against the real thing: RunPod's local API (``--rp_serve_api``, exactly as README starts
it, with no flag but the endpoint) and the local alpha API, both in front of the shared ComfyUI with the test
models, the options' jobs included (trim + webp, delivery base64, both layer modes, whose test models are there).
The report's numbers are checked against the images the worker answered with. RunPod's hosted /run + /status API
is played by a stand-in in tests/unit/test_acceptance.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler.acceptance.__main__ import main
from handler.acceptance.options import IMAGE_FIELDS, picture, subject
from handler.acceptance.prompts import DEFAULT_PROMPTS, SIZES
from handler.acceptance.results import CRITERIA
from handler.doors.alpha.server import create_app
from handler.generate import Generator
from handler.png import alpha_stats
from tests.helpers import RunningComfy, ServerThread, decode_png, runpod_api

pytestmark = pytest.mark.comfyui
# Six prompts at six sizes, each a fresh graph for ComfyUI: at 128 px rather than test mode's 256 the run
# checks the same things in a quarter of the time. So do the options' four jobs (two passes each in a layer mode).
SIDE = 128
OPTIONS = ["trim + webp", "delivery base64", "mode foreground", "mode background"]


@pytest.fixture(scope="module")
def small(comfy: RunningComfy) -> RunningComfy:
    return RunningComfy(comfy.settings.replace(test_size=SIDE), comfy.process, comfy.log_path, comfy.client)


@pytest.fixture(scope="module")
def small_api(small: RunningComfy) -> Iterator[str]:
    """RunPod's local API, as README starts it, in front of the shared ComfyUI."""
    with runpod_api(small.settings) as api:
        yield api.url


def assert_report_matches_images(out: Path, report: dict[str, Any], prompts: int) -> None:
    """Each job the endpoint served passed, and the report's figures are those of the images it wrote."""
    assert report["passed"] and [case["title"] for case in report["cases"]] == [None] * prompts + OPTIONS
    for number, case in enumerate(report["cases"], 1):
        if case["outcome"] == "not offered":
            continue
        assert case["outcome"] == "pass" and [c["name"] for c in case["criteria"]] == list(CRITERIA)
        image = decode_png((out / case["image"]).read_bytes())
        assert case["alpha"] == (alpha_stats(image).as_dict() if image.mode == "RGBA" else None)
        # Test mode runs at ALPHA_TEST_SIZE (the longest side) and says so; the size asked for is reported.
        run = [case["test_mode"]["width"], case["test_mode"]["height"]]
        assert case["size"] == list(image.size) and max(run) == SIDE
        assert case["size"] == run or case["input"].get("trim"), "only a trim is smaller than the canvas"
        if number <= prompts:
            assert (case["input"]["width"], case["input"]["height"]) == SIZES[(number - 1) % len(SIZES)]
        assert case["timings_ms"]["latency"] >= case["timings_ms"]["worker"]["total"] > 0
    layered = {case["input"]["mode"]: case for case in report["cases"] if case["input"].get("mode") in IMAGE_FIELDS}
    assert set(layered) == {"foreground", "background"}
    for mode, case in layered.items():
        blended = decode_png((out / case["blended"]).read_bytes())
        assert blended.mode == "RGB" and list(blended.size) == case["size"], mode
        assert (out / case["input_image"]).read_bytes() == {"foreground": picture, "background": subject}[mode]()
    assert report["cases"][prompts]["image"].endswith(".webp")


def test_local_runpod_api_with_no_other_flag(small_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--endpoint", small_api]) == 0
    out = tmp_path / "acceptance-report"
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "runsync" and [c["prompt"] for c in report["cases"][:6]] == list(DEFAULT_PROMPTS)
    assert_report_matches_images(out, report, len(DEFAULT_PROMPTS))
    assert report["not_offered"] == [] and all(
        c["ok"] is not False for case in report["cases"] for c in case["criteria"]
    )


def test_local_alpha_api(small: RunningComfy, tmp_path: Path) -> None:
    served = tmp_path / "served"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a glass apple\na paper crane\n")
    with ServerThread(create_app(Generator(small.settings.replace(serve_dir=served)))) as server:
        code = main(["--endpoint", server.url, "--prompts", str(prompts), "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["mode"] == "alpha" and report["not_offered"] == ["delivery base64"]
    assert_report_matches_images(tmp_path / "out", report, 2)
    written = [case[name] for case in report["cases"] for name in ("image", "blended") if case[name]]
    files = sorted(path.read_bytes() for path in served.glob("alpha_*"))
    assert files == sorted((tmp_path / "out" / path).read_bytes() for path in written)
    assert [c["ok"] for c in report["cases"][0]["criteria"]] == [True, None, None, True, True, True, True, True, None]
