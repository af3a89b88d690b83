"""The workflow validator online, against the real ComfyUI, and the worker refusing broken workflows at
startup (it never finds out on a customer's job)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handler.paths import REPO
from tests.helpers import RunningComfy, child_env
from tests.workflow_mutants import OFFLINE, ONLINE, write

pytestmark = pytest.mark.comfyui
SHIPPED = sorted((REPO / "workflows").glob("*.json"))


def check(comfy: RunningComfy, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handler.workflow", "check", *map(str, files), "--comfyui", comfy.settings.comfyui_url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_shipped_workflows_pass_online(comfy: RunningComfy) -> None:
    result = check(comfy, *SHIPPED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.endswith(f"{len(SHIPPED)} of {len(SHIPPED)} workflow(s) pass (offline and online)\n")
    assert {p.stem for p in SHIPPED} >= {"alpha_txt2img", "alpha_txt2img_conv"}


def test_online_mutants_get_their_messages(comfy: RunningComfy, tmp_path: Path) -> None:
    """One command over the whole online corpus: each file fails with its own message."""
    paths = {name: write(tmp_path, name, mutation) for name, (mutation, _) in ONLINE.items()}
    result = check(comfy, *paths.values())
    assert result.returncode == 1
    report = result.stdout
    for name, (_, words) in ONLINE.items():
        section = report.split(f"FAIL {paths[name]}: ", 1)[1].split("\nFAIL ", 1)[0].split("\nOK ", 1)[0]
        assert words in section, f"{name}: {section}"
    assert report.endswith(f"0 of {len(ONLINE)} workflow(s) pass (offline and online)\n")


def test_unreachable_comfyui_is_a_clear_failure(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "handler.workflow", "check", str(SHIPPED[0]), "--comfyui", "http://127.0.0.1:9"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and result.stderr.startswith("cannot run the online checks: ")


@pytest.mark.parametrize(
    ("mutation", "words"), [*OFFLINE.values(), *ONLINE.values()], ids=[*OFFLINE.keys(), *ONLINE.keys()]
)
def test_the_worker_refuses_to_start(
    comfy: RunningComfy, tmp_path: Path, mutation: Callable[[Any], Any], words: str
) -> None:
    settings = comfy.settings.replace(workflow=write(tmp_path, "mutant", mutation))
    result = subprocess.run(
        [sys.executable, "-m", "handler"],
        cwd=REPO,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "worker not started: invalid_workflow: " in result.stderr and words in result.stderr, result.stderr[-2000:]
    assert "RunPod worker starting" not in result.stderr
