"""The workflow validator offline: each broken workflow (one mutation of the production one) gets its own
message, from the rules and from the `python -m handler.workflow check` command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handler.errors import WorkflowError
from handler.paths import REPO
from handler.workflow import check as workflow_check
from handler.workflow import rules as workflow_rules
from handler.workflow.graph import Workflow
from tests.workflow_mutants import OFFLINE, ONLINE, production, write

SHIPPED = sorted((REPO / "workflows").glob("*.json"))


def test_the_corpus_is_large_enough() -> None:
    assert len(OFFLINE) + len(ONLINE) >= 15


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_workflows_pass_offline(path: Path) -> None:
    assert workflow_check.check_file(path, None) == []


@pytest.mark.parametrize(("mutation", "words"), OFFLINE.values(), ids=OFFLINE.keys())
def test_offline_mutant_gets_its_message(tmp_path: Path, mutation: Callable[[Any], Any], words: str) -> None:
    path = write(tmp_path, "mutant", mutation)
    found = workflow_check.check_file(path, None)
    assert any(words in problem for problem in found), found
    with pytest.raises(WorkflowError) as caught:  # the worker loads it the same way, and refuses it
        Workflow.load(path)
    assert caught.value.message in found[0] or found[0] in caught.value.message


@pytest.mark.parametrize(("mutation", "words"), ONLINE.values(), ids=ONLINE.keys())
def test_online_mutant_passes_offline(tmp_path: Path, mutation: Callable[[Any], Any], words: str) -> None:
    """Online mutants break only what needs ComfyUI to see (tests/integration/test_workflow_check.py)."""
    assert workflow_check.check_file(write(tmp_path, "mutant", mutation), None) == []


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "broken.json is not valid JSON" in workflow_check.check_file(broken, None)[0]
    assert "cannot read workflow" in workflow_check.check_file(tmp_path / "absent.json", None)[0]


def test_every_problem_is_listed_not_just_the_first() -> None:
    graph = production()
    graph["5"]["inputs"]["height"] = 1000
    graph["6"]["inputs"]["model"] = ["42", 0]
    found = workflow_rules.problems(graph, "wf")
    assert found == [
        "wf: node 6 input 'model' links to node 42, which does not exist",
        "wf: node 5 (alpha:latent) height is 1000; it must be a multiple of 64 (LayerDiffuse's decoder needs it)",
        "wf: node 5 _meta.alpha_sizes does not include the node's own size 1024x1000, the default",
    ]


def test_command_report_and_exit_codes(tmp_path: Path) -> None:
    bad = write(tmp_path, "width_1000", OFFLINE["width_1000"][0])
    good = REPO / "workflows" / "alpha_txt2img.json"
    result = subprocess.run(
        [sys.executable, "-m", "handler.workflow", "check", str(good), str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"OK   {good}" in result.stdout and f"FAIL {bad}: 2 problem(s)" in result.stdout
    assert "width is 1000; it must be a multiple of 64" in result.stdout
    assert "1 of 2 workflow(s) pass (offline only; add --comfyui URL for the online checks)" in result.stdout
    ok = subprocess.run(
        [sys.executable, "-m", "handler.workflow", "check", str(good)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and ok.stdout.endswith(
        "1 of 1 workflow(s) pass (offline only; add --comfyui URL for the online checks)\n"
    )
