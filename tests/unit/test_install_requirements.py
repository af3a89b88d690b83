"""scripts/install_requirements.sh, the install step CI and the image share, on a scratch copy.

The copy has requirements files without packages, so pip runs for real but installs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handler.paths import REPO

SCRIPT = REPO / "scripts" / "install_requirements.sh"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(SCRIPT, tmp_path / "scripts" / SCRIPT.name)
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt"):
        (tmp_path / name).write_text(f"# {name}: nothing to install\n")
    return tmp_path


def install(checkout: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checkout / "scripts" / SCRIPT.name), *args],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHON": python},
    )


def stamps(venv: Path) -> list[str]:
    return sorted(path.name for path in venv.glob(".alpha-requirements-*"))


def test_setup_calls_it() -> None:
    # The Dockerfile's use is checked in test_dockerfile.py.
    assert "scripts/install_requirements.sh --dev" in (REPO / "scripts" / "setup.sh").read_text()
    assert os.access(SCRIPT, os.X_OK)


def test_creates_the_venv_installs_and_then_does_nothing(checkout: Path) -> None:
    first = install(checkout)
    assert first.returncode == 0, first.stderr
    assert "creating .venv" in first.stderr and "installing requirements.txt " in first.stderr
    venv = checkout / ".venv"
    assert (venv / "bin" / "python").is_file() and len(stamps(venv)) == 1
    again = install(checkout)
    assert (again.returncode, again.stderr) == (0, "")
    # --dev adds requirements-dev.txt, and a changed input installs again.
    dev = install(checkout, "--dev")
    assert dev.returncode == 0 and "installing requirements.txt requirements-dev.txt " in dev.stderr
    (checkout / "constraints.txt").write_text("# changed\n")
    changed = install(checkout, "--dev")
    assert changed.returncode == 0 and "installing" in changed.stderr and "creating" not in changed.stderr
    assert len(stamps(venv)) == 1


def test_venv_option(checkout: Path, tmp_path: Path) -> None:
    done = install(checkout, "--venv", str(tmp_path / "elsewhere"))
    assert done.returncode == 0, done.stderr
    assert stamps(tmp_path / "elsewhere") and not (checkout / ".venv").exists()


def test_refuses_an_interpreter_other_than_3_11(checkout: Path) -> None:
    fake = checkout / ".venv" / "bin" / "python"  # answers "not 3.11" to the version check
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 3.12.0\nexit 1\n")
    fake.chmod(0o755)
    done = install(checkout)
    assert done.returncode == 1 and "constraints.txt is a freeze for Python 3.11" in done.stderr
    assert not stamps(checkout / ".venv")


@pytest.mark.parametrize("args", [["--bogus"], ["--venv"], ["extra"]])
def test_bad_arguments(checkout: Path, args: list[str]) -> None:
    done = install(checkout, *args)
    assert done.returncode == 2 and "usage:" in done.stderr
