"""Soak: 100 sequential jobs through RunPod's local API, served by a `python -m handler --rp_serve_api`
subprocess in front of the shared ComfyUI, on the test models at 64 px. Every job succeeds, ComfyUI's output
folder keeps no file, and the worker's memory (RSS) stays flat between job 10 and job 100. The figures are
printed to the terminal, with or without -s."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.helpers import RunningComfy, assert_success_contract, post_json, runpod_api

pytestmark = [pytest.mark.comfyui, pytest.mark.soak]
JOBS = 100
BASELINE_JOB = 10
MAX_RSS_GROWTH = 50 * 2**20
JOB_TIMEOUT_S = 120


def files(folder: Path | None) -> set[Path]:
    assert folder is not None
    return {p for p in folder.rglob("*") if p.is_file()}


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


@pytest.mark.timeout(2400)
def test_100_sequential_jobs(
    comfy: RunningComfy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    settings = comfy.settings.replace(test_size=64)
    before = files(settings.output_dir)
    rss: dict[int, int] = {}
    comfy_rss: dict[int, int] = {}  # reported, not asserted: ComfyUI caches models and is not the handler's
    assert comfy.process.proc is not None
    comfyui = psutil.Process(comfy.process.proc.pid)
    walls: list[float] = []
    log_path = tmp_path / "worker.log"
    started = time.monotonic()
    with log_path.open("wb") as log, runpod_api(settings, log) as api:
        worker = psutil.Process(api.process.pid)
        for job in range(1, JOBS + 1):
            sent = time.monotonic()
            status, body = post_json(
                f"{api.url}/runsync", {"input": {"prompt": f"a paper lantern, take {job}", "seed": job}}, JOB_TIMEOUT_S
            )
            walls.append(time.monotonic() - sent)
            assert status == 200 and body.get("status") == "COMPLETED", (job, body.get("error"), body.get("detail"))
            _, info = assert_success_contract(body["output"])
            assert info["seed"] == job and info["test_mode"]["width"] == 64
            if job in (1, BASELINE_JOB, JOBS):
                rss[job] = worker.memory_info().rss
                comfy_rss[job] = comfyui.memory_info().rss
    duration = time.monotonic() - started
    growth = rss[JOBS] - rss[BASELINE_JOB]
    report = (
        f"soak: {JOBS} jobs in {duration:.1f} s (worker start included); per job p50 "
        f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s; worker RSS job 1 {mib(rss[1])}, "
        f"job {BASELINE_JOB} {mib(rss[BASELINE_JOB])}, job {JOBS} {mib(rss[JOBS])}: growth {mib(growth)} "
        f"(limit {mib(MAX_RSS_GROWTH)}); ComfyUI RSS job {BASELINE_JOB} {mib(comfy_rss[BASELINE_JOB])}, "
        f"job {JOBS} {mib(comfy_rss[JOBS])}"
    )
    for name, value in (("soak_duration_s", round(duration, 1)), ("soak_rss_growth_bytes", growth)):
        record_property(name, value)
    with capsys.disabled():
        print(f"\n{report}")
    leftovers = files(settings.output_dir) - before
    assert not leftovers, f"jobs left files in ComfyUI's output folder: {sorted(p.name for p in leftovers)[:5]}"
    assert growth < MAX_RSS_GROWTH, report
