"""The benchmark harness's arithmetic: the figures BENCHMARKS.md records come from these."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.direct_client import execution_seconds
from bench.harness import Summary, run_shape
from handler.paths import REPO
from handler.settings import Settings
from handler.workflow.graph import Workflow


def test_summary_median_p90_min_max() -> None:
    summary = Summary.of([float(v) for v in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5)])
    assert (summary.n, summary.median, summary.p90, summary.low, summary.high) == (10, 5.5, 9.0, 1.0, 10.0)
    assert Summary.of([0.25]).p90 == 0.25
    assert Summary.of([1.0, 2.0, 3.0]).p90 == 3.0  # nearest rank: an observed value, never interpolated
    with pytest.raises(ValueError, match="no values"):
        Summary.of([])


def test_execution_seconds_from_history() -> None:
    entry = {
        "status": {
            "messages": [
                ["execution_start", {"timestamp": 1000}],
                ["execution_cached", {"nodes": []}],
                ["execution_success", {"timestamp": 3500}],
            ]
        }
    }
    assert execution_seconds(entry) == 2.5
    with pytest.raises(RuntimeError, match="no execution timestamps"):
        execution_seconds({"status": {"messages": [["execution_start", {"timestamp": 1}]]}})


def test_run_shape_follows_the_core(tmp_path: Path) -> None:
    workflow = Workflow.load(REPO / "workflows" / "alpha_txt2img.json")
    test = Settings().replace(test_models=True, test_size=256, test_steps=2)
    assert run_shape(test, workflow) == (256, 256, 2)
    production = Settings().replace(test_models=False, models_dir=tmp_path)
    assert run_shape(production, workflow) == (1024, 1024, None)
