"""What the image holds, layer by layer as the Dockerfile builds it, computed from this checkout (no Docker here).

* base: the CUDA runtime image's size (an estimate, below: nothing here can pull it), and in the total's last
  line the plain Ubuntu image the same Python stack could run on;
* packages: the runtime virtualenv, that is the distributions ``requirements.txt`` pulls in (Requires-Dist
  followed with extras and markers, as pip resolves them here), sized from each one's installed files, largest
  first; the development tools (``requirements-dev.txt`` alone) are not in the image and are left out;
* weights: the manifest's sizes (``pins/models.json``), or its ``size_note`` estimate where no size is pinned yet
  (marked ``~``); optional files are not baked;
* ComfyUI: the laid-out ComfyUI folder, without caches and run-time folders;
* application: what the last COPY lines copy.

    .venv/bin/python -m bench.image_content [--top 25]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from handler.models import manifest
from handler.paths import REPO
from handler.settings import Settings

# The base images, unpacked, linux/amd64 (bytes). Nothing here can reach a registry, so these are estimates, not
# read from the registry: NVIDIA's CUDA 13.0 runtime image is Ubuntu 24.04 plus the CUDA 13.0 runtime libraries
# (cuBLAS, cuFFT, cuSPARSE, cuSOLVER, cuRAND, NPP, nvJPEG, NVRTC, ...), NCCL and cuda-compat, about 3.4 GB;
# Ubuntu 24.04 is about 78 MB. `docker image inspect --format '{{.Size}}' <image>` gives the real figures.
BASE_IMAGES = {
    "nvidia/cuda:13.0.1-runtime-ubuntu24.04 (the current base)": 3_400_000_000,
    "ubuntu:24.04 (the alternative)": 78_000_000,
}
# The system step: git and its dependencies (Ubuntu 24.04's package sizes) and python-build-standalone's
# CPython 3.11 (install_only build).
SYSTEM_STEP = {"git, CA certificates (apt)": 45_000_000, "CPython 3.11.17 in /opt/python": 120_000_000}
APP_PATHS = ("handler", "workflows", "bootstrap.sh")
# ComfyUI's run-time folders and caches: not in the image (or empty there).
COMFYUI_SKIP = {"__pycache__", "output", "input", "temp", "user", ".git"}
ESTIMATE = re.compile(r"about\s+([\d.]+)\s*(GB|MB)", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    name: str
    size: int
    estimated: bool = False

    def row(self) -> str:
        mark = "~" if self.estimated else " "
        return f"{mark}{self.size / 1e6:9,.1f} MB  {self.name}"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def installed() -> dict[str, metadata.Distribution]:
    return {norm(d.metadata["Name"]): d for d in metadata.distributions()}


def closure(roots: Iterable[Requirement], dists: dict[str, metadata.Distribution]) -> set[str]:
    """The installed distributions these requirements pull in, extras included (torch asks for cuda-toolkit's)."""
    seen: set[tuple[str, str]] = set()
    todo = [(norm(r.name), extra) for r in roots for extra in ("", *r.extras)]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen or name not in dists:
            continue
        seen.add((name, extra))
        for raw in dists[name].requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(norm(req.name), e) for e in ("", *req.extras)]
    return {name for name, _ in seen}


def dist_size(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file() and "__pycache__" not in path.parts:
            total += path.stat().st_size
    return total


def packages(dists: dict[str, metadata.Distribution]) -> list[Item]:
    runtime = closure(requirement_names(REPO / "requirements.txt"), dists)
    return sorted((Item(name, dist_size(dists[name])) for name in runtime), key=lambda i: -i.size)


def dev_only(dists: dict[str, metadata.Distribution]) -> int:
    runtime = closure(requirement_names(REPO / "requirements.txt"), dists)
    dev = closure(requirement_names(REPO / "requirements-dev.txt"), dists) - runtime
    return sum(dist_size(dists[name]) for name in dev)


def weights() -> list[Item]:
    raw = {m["name"]: m for m in json.loads(manifest.MANIFEST.read_text())["models"]}
    items = []
    for entry in manifest.load():
        if entry.optional:
            continue
        if entry.size is not None:
            items.append(Item(entry.label, entry.size))
            continue
        found = ESTIMATE.search(raw[entry.name].get("size_note", ""))
        size = int(float(found[1]) * (1e9 if found[2].upper() == "GB" else 1e6)) if found else 0
        items.append(Item(entry.label, size, estimated=True))
    return items


def files_under(path: Path, skip: set[str]) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in path.iterdir():
        if child.name in skip or child.is_symlink():
            continue
        yield from files_under(child, skip)


def folder_size(path: Path, skip: set[str]) -> int:
    return sum(file.stat().st_size for file in files_under(path, skip)) if path.exists() else 0


def layers(settings: Settings) -> list[tuple[str, list[Item]]]:
    dists = installed()
    comfy = settings.comfyui_dir
    return [
        ("base", [Item(name, size, estimated=True) for name, size in BASE_IMAGES.items()][:1]),
        ("system step", [Item(name, size, estimated=True) for name, size in SYSTEM_STEP.items()]),
        ("packages (runtime virtualenv)", packages(dists)),
        ("weights", weights()),
        ("ComfyUI", [Item(f"{comfy.name} (ComfyUI, custom nodes, our packs)", folder_size(comfy, COMFYUI_SKIP))]),
        ("application", [Item(path, folder_size(REPO / path, {"__pycache__"})) for path in APP_PATHS]),
    ]


def report(settings: Settings, top: int) -> list[str]:
    lines = ["== image content by layer, in build order (~ an estimate) =="]
    total, estimated = 0, False
    for name, items in layers(settings):
        size = sum(i.size for i in items)
        total += size
        estimated = estimated or any(i.estimated for i in items)
        lines.append(f"{name:32}{size / 1e6:10,.1f} MB")
        shown = items if len(items) <= top else items[:top]
        lines += [f"    {item.row()}" for item in shown]
        if len(items) > len(shown):
            rest = items[len(shown) :]
            lines.append(f"     {sum(i.size for i in rest) / 1e6:9,.1f} MB  {len(rest)} more packages")
    lines.append(f"{'total':32}{total / 1e6:10,.1f} MB{' (with estimates)' if estimated else ''}")
    cuda, ubuntu = BASE_IMAGES.values()
    lines.append(f"{'with ubuntu:24.04 as the base':32}{(total - cuda + ubuntu) / 1e6:10,.1f} MB")
    lines.append(f"{'not in the image: dev tools':32}{dev_only(installed()) / 1e6:10,.1f} MB (requirements-dev.txt)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=25, help="packages listed one by one (default 25)")
    args = parser.parse_args(argv)
    print("\n".join(report(Settings.from_env(), args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
