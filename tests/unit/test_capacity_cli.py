"""``python -m handler.capacity``: its JSON contract, its inputs (a report, a trace, prices) and where each figure
came from, its errors (exit 2, naming the flag), and that it serves without the plotting library."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bench import capacity_speed
from handler.capacity import prices, traffic
from handler.capacity.__main__ import main
from handler.paths import REPO

SPREAD = {"mean", "p50", "p95", "p99"}
RESULT_KEYS = {
    "settings",
    "traffic",
    "seed",
    "sources",
    "jobs",
    "hours",
    "wait_s",
    "latency_s",
    "cold_starts",
    "workers",
    "billed_worker_s",
    "cost_usd",
}
CHOICE_KEYS = {"active", "max", "idle_timeout_s", "scaler", "pool"}
EXAMPLE_REPORT = REPO / "handler" / "capacity" / "data" / "example-report-h100.json"
FAST = ["--rate-per-min", "6", "--hours", "4", "--job-time", "lognormal:4,7", "--cold-start-s", "25"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main([*args, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert exited.value.code == 2
    return capsys.readouterr().err


def report_file(
    tmp_path: Path, execution: list[int | None], queue: list[int | None], detected: bool, options: int = 0
) -> Path:
    """A report.json as the acceptance run writes it (handler/acceptance/report.py), the parts the planner reads:
    the prompts' jobs, then ``options`` jobs of the options (slow ones: a layer mode runs twice)."""
    cases = [
        {"number": n, "kind": "prompt", "timings_ms": {"latency": 0, "queue": q, "execution": e, "worker": None}}
        for n, (e, q) in enumerate(zip(execution, queue, strict=True), start=1)
    ]
    cases += [
        {"number": n, "kind": "option", "timings_ms": {"latency": 0, "queue": 300, "execution": 90_000, "worker": None}}
        for n in range(len(cases) + 1, len(cases) + options + 1)
    ]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"cases": cases, "cold_start": {"detected": detected}}))
    return path


def test_simulate_json_has_the_documented_keys_and_figures_that_agree(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "simulate", *FAST, "--max", "3", "--idle-timeout-s", "60")
    assert set(result) == RESULT_KEYS
    assert set(result["wait_s"]) == set(result["latency_s"]) == SPREAD
    assert set(result["cold_starts"]) == {"per_hour", "total", "jobs_met", "jobs_met_share"}
    assert set(result["workers"]) == {"busy", "idle", "starting", "utilisation"}
    assert set(result["billed_worker_s"]) == {"busy", "idle", "cold_start", "total"}
    assert set(result["cost_usd"]) == {"per_hour", "per_1000_jobs", "total"}
    assert result["settings"] == {
        "active": 0,
        "max": 3,
        "idle_timeout_s": 60,
        "scaler": "queue-delay:4",
        "pool": "ADA_24",
    }
    # lognormal p50 4, p95 7: the mean job is 4 e^(sigma^2 / 2), sigma = ln(7/4) / 1.645; latency = wait + job.
    mean_job = 4 * np.exp((np.log(7 / 4) / 1.6448536) ** 2 / 2)
    assert result["latency_s"]["mean"] == pytest.approx(result["wait_s"]["mean"] + mean_job, rel=0.03)
    assert result["jobs"] == pytest.approx(6 * 60 * 4, rel=0.1)
    billed, cost = result["billed_worker_s"], result["cost_usd"]
    assert billed["busy"] + billed["idle"] + billed["cold_start"] == pytest.approx(billed["total"], abs=0.5)
    assert billed["cold_start"] == pytest.approx(result["cold_starts"]["total"] * 25.0, abs=0.05)
    ada_24 = prices.load().price("ADA_24")
    assert cost["total"] == pytest.approx(billed["total"] * ada_24.flex_per_s, abs=1e-4)
    assert cost["per_1000_jobs"] == pytest.approx(cost["total"] / result["jobs"] * 1000, rel=1e-3)


def test_recommend_json_choice_passes_back_to_simulate_as_it_stands(capsys: pytest.CaptureFixture[str]) -> None:
    # The example report's H100 figures at 6 requests a minute: the cheapest configuration at seed 1 only just
    # meets 10 s, and fails at the re-check's seed 2.
    planned = ["--rate-per-min", "6", "--from-report", f"ADA_80_PRO={EXAMPLE_REPORT}"]
    report = run_json(capsys, "recommend", *planned, "--p95-s", "10")
    choice = report["choice"]
    assert set(choice) == CHOICE_KEYS and set(report["result"]) == RESULT_KEYS and choice["pool"] == "ADA_80_PRO"
    assert report["result"]["latency_s"]["p95"] <= 10
    flags = [arg for key, value in choice.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    assert run_json(capsys, "simulate", *planned, *flags) == report["result"]
    frontier = report["frontier"]
    costs, p95s = [entry["cost_per_hour"] for entry in frontier], [entry["p95_s"] for entry in frontier]
    assert costs == sorted(costs) and all(later < earlier for earlier, later in itertools.pairwise(p95s))
    # Whatever on the frontier meets the target more cheaply was passed over: it failed at the re-check's seed.
    cost = report["result"]["cost_usd"]["per_hour"]
    cheaper = [e["settings"] for e in frontier if e["meets"] and e["cost_per_hour"] < cost]
    passed_over = report["passed_over"]
    assert passed_over and all(settings in [entry["settings"] for entry in passed_over] for settings in cheaper)
    assert all(entry["p95_s"] <= 10 < entry["recheck_p95_s"] for entry in passed_over)
    recheck = report["recheck"]
    assert recheck["seed"] == 2 and recheck["holds"] is True and recheck["p95_s"] <= 10
    assert recheck["margin_s"] == pytest.approx(10 - recheck["p95_s"], abs=1e-3)


def test_recommend_says_when_no_configuration_meets_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["recommend", *FAST, "--p95-s", "3", "--search-max-limit", "3", "--json"])
    printed = capsys.readouterr()
    assert code == 2
    report = json.loads(printed.out)
    assert report["choice"] is None and report["best"]["p95_s"] > 3
    assert "--p95-s 3: no configuration in the search space meets it" in printed.err
    assert f"p95 {report['best']['p95_s']:.2f} s" in printed.err


def test_a_report_gives_job_times_and_cold_start_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = report_file(tmp_path, [4000, 5000, 6000, 9000], [40_000, 300, 500, 400], detected=True, options=4)
    result = run_json(
        capsys,
        "simulate",
        "--rate-per-min",
        "4",
        "--hours",
        "2",
        "--from-report",
        f"AMPERE_24={path}",
        "--pool",
        "AMPERE_24",
    )
    sources = result["sources"]
    assert sources["job_time"].startswith("report.json: executionTime of 4 jobs, median 5.50 s (mean 6.00 s)")
    # The cold start: the first job's delayTime less the median of the others'.
    assert sources["cold_start_s"] == "39.60 s, report.json: first job's delayTime less the others' median"
    assert result["billed_worker_s"]["cold_start"] == pytest.approx(
        result["cold_starts"]["total"] * (40.0 - 0.4), abs=0.05
    )
    assert "median 400 ms" in sources["not_modelled"]
    # Job times are drawn from those four values only: the options' jobs are not the traffic planned for.
    assert result["latency_s"]["p50"] >= 4.0


def test_a_report_without_a_cold_start_leaves_the_default_and_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = report_file(tmp_path, [4000, 5000], [300, 400], detected=False)
    result = run_json(capsys, "simulate", "--rate-per-min", "4", "--hours", "1", "--from-report", str(path))
    assert result["sources"]["cold_start_s"].startswith("default 30 s")
    assert "its first job met no cold start" in result["sources"]["cold_start_s"]
    given = run_json(
        capsys, "simulate", "--rate-per-min", "4", "--hours", "1", "--from-report", str(path), "--cold-start-s", "12"
    )
    assert given["sources"]["cold_start_s"] == "--cold-start-s 12"


def test_a_trace_in_seconds_or_iso_8601_replays_the_same_requests(tmp_path: Path) -> None:
    seconds = tmp_path / "seconds.csv"
    seconds.write_text("timestamp\n100\n100.5\n# a comment\n\n160,extra,columns\n3700\n")
    iso = tmp_path / "iso.csv"
    iso.write_text("2026-12-01T10:00:00Z\n2026-12-01T10:00:00.5+00:00\n2026-12-01T10:01:00\n2026-12-01T11:00:00Z\n")
    for path in (seconds, iso):
        replay = traffic.trace(path, None)
        assert replay.arrivals.tolist() == [0.0, 0.5, 60.0, 3600.0] and replay.horizon_s == 3600.0
    cut = traffic.trace(seconds, 0.5)
    assert cut.arrivals.tolist() == [0.0, 0.5, 60.0] and "1 later requests left out" in cut.source


@pytest.mark.parametrize(
    ("args", "flag", "says"),
    [
        (["--rate-per-min", "0"], "--rate-per-min", "must be a number above 0"),
        (["--rate-per-min", "-3"], "--rate-per-min", "must be a number above 0"),
        (["--rate-per-min", "6", "--pool", "VOLTA_32"], "--pool", "unknown pool 'VOLTA_32'"),
        (["--rate-per-min", "6", "--active", "3", "--max", "2"], "--max", "2 is below --active 3"),
        (["--rate-per-min", "6", "--scaler", "queue-depth:3"], "--scaler", "is not queue-delay:SECONDS"),
        (["--rate-per-min", "6", "--scaler", "request-count:1.5"], "--scaler", "request-count:N (a whole number"),
        (["--rate-per-min", "6", "--idle-timeout-s", "-1"], "--idle-timeout-s", "must be a number >= 0"),
        (["--rate-per-min", "6", "--hours", "0"], "--hours", "must be a number above 0"),
        (["--rate-per-min", "6", "--price-per-s", "cheap"], "--price-per-s", "is not FLEX or FLEX,ACTIVE"),
    ],
)
def test_bad_settings_exit_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], args: list[str], flag: str, says: str
) -> None:
    err = refused(capsys, "simulate", "--job-time", "fixed:5", *args)
    assert f"error: {flag}: " in err and says in err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "has no request timestamps"),
        ("timestamp\n# nothing else\n", "has no request timestamps"),
        ("10\n12\n11\n", "line 3: '11' is earlier than the line before (not sorted)"),
        ("10\n2026-12-01T10:00:00Z\n", "line 2: '2026-12-01T10:00:00Z' is not a timestamp in seconds"),
    ],
)
def test_bad_traces_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(content)
    err = refused(capsys, "simulate", "--job-time", "fixed:5", "--trace", str(path))
    assert "error: --trace: " in err and says in err


@pytest.mark.parametrize(
    ("report", "says"),
    [
        ({"cases": []}, "has no jobs"),
        ({"cases": [{"timings_ms": {"execution": None, "queue": None}}]}, "has no job with an executionTime"),
        ({"endpoint": "x"}, "is not an acceptance report"),
    ],
)
def test_bad_reports_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, report: dict[str, Any], says: str
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    err = refused(capsys, "simulate", "--rate-per-min", "6", "--from-report", str(path))
    assert "error: --from-report: " in err and says in err


@pytest.mark.parametrize(
    ("job_time", "says"),
    [
        ("normal:5", "the kind is one of fixed, exp, lognormal"),
        ("lognormal:5,4", "P95 is below P50"),
        ("exp:0", "above 0"),
        ("fixed:5,6", "fixed takes one value"),
    ],
)
def test_bad_job_times_exit_2(capsys: pytest.CaptureFixture[str], job_time: str, says: str) -> None:
    err = refused(capsys, "simulate", "--rate-per-min", "6", "--job-time", job_time)
    assert "error: --job-time: " in err and says in err


def test_a_pool_without_a_job_time_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(
        capsys,
        "recommend",
        "--rate-per-min",
        "6",
        "--p95-s",
        "10",
        "--job-time",
        "ADA_24=fixed:4",
        "--pool",
        "ADA_24",
        "--pool",
        "AMPERE_80",
    )
    assert "error: --job-time: no job time for pool AMPERE_80" in err


def test_price_file_names_its_source_and_date_and_prices_every_pool_the_hub_lists() -> None:
    data = json.loads(prices.PRICES.read_text())
    assert "Pricing" in data["source"] and data["read"] == "2026-12-03"
    hub = json.loads((REPO / ".runpod" / "hub.json").read_text())["config"]["gpuIds"].split(",")
    listed = prices.load()
    for pool in hub:
        price = listed.price(pool)
        assert 0 < price.active_per_s < price.flex_per_s  # active workers are billed at a discount
    assert listed.price("HOPPER_141").flex_per_s > listed.price("AMPERE_16").flex_per_s


def test_price_per_s_overrides_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "simulate", *FAST, "--active", "1", "--price-per-s", "0.001,0.0005")
    billed_active = 1 * np.ceil(result["hours"] * 3600 - 1e-9)
    flex_s = result["billed_worker_s"]["total"] - billed_active
    assert result["cost_usd"]["total"] == pytest.approx(flex_s * 0.001 + billed_active * 0.0005, abs=1e-3)
    assert result["sources"]["price_per_s"] == "--price-per-s 0.001,0.0005: flex 0.001, active 0.0005"


def test_the_example_report_runs_and_says_it_is_not_a_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLE_REPORT
    assert json.loads(path.read_text())["note"].startswith("NOT A MEASURED ENDPOINT")
    result = run_json(
        capsys,
        "simulate",
        "--rate-per-min",
        "6",
        "--hours",
        "1",
        "--from-report",
        f"ADA_80_PRO={path}",
        "--pool",
        "ADA_80_PRO",
    )
    assert (
        result["sources"]["cold_start_s"]
        == "31.46 s, example-report-h100.json: first job's delayTime less the others' median"
    )
    assert result["billed_worker_s"]["cold_start"] == pytest.approx(result["cold_starts"]["total"] * 31.46, abs=0.05)
    execution = [3.948, 4.21, 4.32, 4.375, 4.82, 5.006]
    assert f"median {statistics.median(execution):.2f} s" in result["sources"]["job_time"]


def test_plots_are_pictures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for command, extra in (("simulate", []), ("recommend", ["--p95-s", "12", "--search-idle-timeout-s", "60"])):
        picture = tmp_path / f"{command}.png"
        assert main([command, *FAST, *extra, "--plot", str(picture)]) == 0
        assert f"{picture}" in capsys.readouterr().out
        with Image.open(picture) as image:
            assert image.format == "PNG" and image.size[0] >= 1000 and image.size[1] >= 600
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is not None and len(colours) > 20  # drawn, not blank


BLOCK_MATPLOTLIB = (
    "import sys, runpy; sys.modules['matplotlib'] = None; sys.argv = ['capacity', *sys.argv[1:]]; "
    "runpy.run_module('handler.capacity', run_name='__main__')"
)


def test_simulate_needs_no_plotting_library_and_plot_says_what_it_needs(tmp_path: Path) -> None:
    def capacity(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", BLOCK_MATPLOTLIB, "simulate", *FAST, *args]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)

    served = capacity("--json")
    assert served.returncode == 0, served.stderr
    assert set(json.loads(served.stdout)) == RESULT_KEYS
    plotted = capacity("--plot", str(tmp_path / "p.png"))
    assert plotted.returncode == 2 and "--plot: needs matplotlib (requirements-dev.txt" in plotted.stderr


def test_the_speed_benchmark_runs_and_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    capacity_speed.main(["--rates", "0.5", "--hours", "0.2", "--reps", "1", "--recommend", "0.5"])
    printed = capsys.readouterr().out
    found = re.search(r"0\.5/s for 0\.2 h: ([\d,]+) requests +median [\d.]+ s.*; [\d.]+ us a request", printed)
    assert found is not None, printed
    assert 280 < int(found.group(1).replace(",", "")) < 440  # 0.5 a second for 720 s: 360, Poisson
    assert re.search(r"0\.5/min, default space and hours +median [\d.]+ s.*; \d+ configurations", printed)


def test_pools_compared_on_one_job_time_say_it_was_not_measured_on_each(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "recommend", *FAST, "--job-time", "AMPERE_80=lognormal:2,3", "--p95-s", "12",
                      "--pool", "AMPERE_24", "--pool", "AMPERE_80", "--search-idle-timeout-s", "60")  # fmt: skip
    # AMPERE_24 at 0.00019 a second for 4-7 s jobs is cheaper than AMPERE_80 at 0.00076 for 2-3 s jobs, but its
    # job time was not measured there, and the choice says so.
    assert report["choice"]["pool"] == "AMPERE_24"
    sources = report["result"]["sources"]["job_time"]
    assert sources.startswith("--job-time lognormal:4,7 (mean 4.24 s); not measured on this pool: the same for")
    pools = {entry["settings"]["pool"] for entry in report["frontier"]}
    assert pools == {"AMPERE_24", "AMPERE_80"}
