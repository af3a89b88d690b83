"""The acceptance run against the real thing: RunPod's local API (``--rp_serve_api``, exactly as README starts
it, with no flag but the endpoint) and the local alpha API, both in front of the shared ComfyUI with the test
models. The report's numbers are checked against the images the worker answered with. RunPod's hosted
/run + /status API is played by a stand-in in tests/unit/test_acceptance.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler.acceptance.__main__ import main
from handler.acceptance.checks import CRITERIA
from handler.acceptance.prompts import DEFAULT_PROMPTS, SIZES
from handler.doors.alpha.server import create_app
from handler.generate import Generator
from handler.png import check_rgba
from tests.helpers import RunningComfy, ServerThread, runpod_api

pytestmark = pytest.mark.comfyui
# Six prompts at six sizes, each a fresh graph for ComfyUI: at 128 px rather than test mode's 256 the run
# checks the same things in a quarter of the time.
SIDE = 128


@pytest.fixture(scope="module")
def small(comfy: RunningComfy) -> RunningComfy:
    return RunningComfy(comfy.settings.replace(test_size=SIDE), comfy.process, comfy.log_path, comfy.client)


@pytest.fixture(scope="module")
def small_api(small: RunningComfy) -> Iterator[str]:
    """RunPod's local API, as README starts it, in front of the shared ComfyUI."""
    with runpod_api(small.settings) as api:
        yield api.url


def assert_report_matches_images(out: Path, report: dict[str, Any], prompts: int) -> None:
    assert report["passed"] and len(report["cases"]) == prompts
    for number, case in enumerate(report["cases"], 1):
        data = (out / case["image"]).read_bytes()
        stats = check_rgba(data, max_uniform=1.0)
        assert case["alpha"] == stats.as_dict()
        # Test mode runs at ALPHA_TEST_SIZE (the longest side) and says so; the size asked for is reported.
        width, height = SIZES[(number - 1) % len(SIZES)]
        assert case["input"]["width"] == width and case["input"]["height"] == height
        assert case["size"] == [stats.width, stats.height] == [case["test_mode"]["width"], case["test_mode"]["height"]]
        assert max(case["size"]) == SIDE
        assert [c["name"] for c in case["criteria"]] == list(CRITERIA)
        assert case["timings_ms"]["latency"] >= case["timings_ms"]["worker"]["total"] > 0


def test_local_runpod_api_with_no_other_flag(small_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--endpoint", small_api]) == 0
    out = tmp_path / "acceptance-report"
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "runsync" and [c["prompt"] for c in report["cases"]] == list(DEFAULT_PROMPTS)
    assert_report_matches_images(out, report, len(DEFAULT_PROMPTS))
    assert all(c["ok"] for case in report["cases"] for c in case["criteria"])


def test_local_alpha_api(small: RunningComfy, tmp_path: Path) -> None:
    served = tmp_path / "served"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a glass apple\na paper crane\n")
    with ServerThread(create_app(Generator(small.settings.replace(serve_dir=served)))) as server:
        code = main(["--endpoint", server.url, "--prompts", str(prompts), "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["mode"] == "alpha"
    assert_report_matches_images(tmp_path / "out", report, 2)
    files = sorted(path.read_bytes() for path in served.glob("alpha_*.png"))
    assert files == sorted((tmp_path / "out" / case["image"]).read_bytes() for case in report["cases"])
    assert [c["ok"] for c in report["cases"][0]["criteria"]] == [True, None, None, True, True, True, True]
