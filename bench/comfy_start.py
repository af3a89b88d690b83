"""ComfyUI's start, three ways to quiet its start log: what each costs in start time and in the image.

- ``headless``: the worker's way (``handler/comfyui/launch.py``): skip the extras and web assets this worker never
  uses, as ``pins/comfyui.json`` lists them;
- ``plain``: ``main.py`` itself, as before the launcher: the extras whose packages are missing fail to import;
- ``installed``: ``main.py`` itself with the missing packages installed (``EXTRAS`` below, into a cached folder put
  on its path), the other way to quiet it. torchaudio has no release for the pinned torch, so it cannot be one.

Runs alternate between the ways; each starts a fresh ComfyUI with the test models and times the spawn to ready
(``ComfyProcess.wait_ready``), and counts the tracebacks and ``IMPORT FAILED`` lines in its start log. The
folder's size is what the ``installed`` way adds to the image.

    .venv/bin/python -m bench.comfy_start [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Summary, bench_settings, log_folder, print_table, run_arguments
from handler.comfyui.process import LAUNCHER, ComfyProcess
from handler.setting_specs import CACHE
from handler.settings import Settings

# ComfyUI v0.3.75's requirements that this worker does not install, at the versions its requirements.txt allows
# (no torch: they would take the pinned one). alembic and SQLAlchemy are installed (requirements.txt).
EXTRAS = (
    "spandrel==0.4.2",
    "kornia==0.8.2",
    "kornia_rs==0.2.0",
    "comfyui-workflow-templates==0.7.25",
    "comfyui-workflow-templates-core==0.3.12",
    "comfyui-workflow-templates-media-api==0.3.14",
    "comfyui-workflow-templates-media-image==0.3.17",
    "comfyui-workflow-templates-media-other==0.3.15",
    "comfyui-workflow-templates-media-video==0.3.12",
    "comfyui-embedded-docs==0.3.1",
)
WAYS = ("headless", "plain", "installed")


class Way(ComfyProcess):
    """ComfyUI started one of the ways above."""

    def __init__(self, settings: Settings, way: str, extras: Path, log_path: Path) -> None:
        super().__init__(settings, log_path=log_path)
        self.way = way
        self.extras = extras

    def command(self, runtime: Path) -> list[str]:
        cmd = super().command(runtime)
        if self.way == "headless":
            return cmd
        args = cmd[cmd.index(str(LAUNCHER)) + 1 :]
        if self.way == "plain":
            return [sys.executable, *args]
        # main.py with the extras' folder after ComfyUI's own on the path.
        run = f"import runpy, sys; sys.path.insert(1, {str(self.extras)!r}); sys.argv = sys.argv[1:]; "
        run += "runpy.run_path('main.py', run_name='__main__')"
        return [sys.executable, "-c", run, *args]


def install_extras() -> Path:
    folder = CACHE / "bench-comfy-start-extras"
    if not (folder / ".done").is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(folder), *EXTRAS],
            check=True,
            timeout=900,
        )
        (folder / ".done").touch()
    return folder


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def start_once(settings: Settings, way: str, extras: Path, logs: Path, run: int) -> tuple[float, int, int]:
    log_path = logs / f"{way}-{run}.log"
    process = Way(settings, way, extras, log_path)
    started = time.monotonic()
    try:
        process.start()
        process.wait_ready()
        took = time.monotonic() - started
    finally:
        process.stop()
    text = log_path.read_text(errors="replace").split("To see the GUI go to", 1)[0]
    return took, text.count("Traceback"), text.count("IMPORT FAILED")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--logs", type=Path, help="keep the ComfyUI logs here (default: a temporary folder)")
    run_arguments(parser, device="cpu")
    args = parser.parse_args(argv)
    settings = bench_settings(args)
    extras = install_extras()
    logs = log_folder(args.logs, "alpha-bench-comfy-start-")
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    alarms: dict[str, tuple[int, int]] = {}
    for run in range(args.runs):
        for way in WAYS if run % 2 == 0 else reversed(WAYS):
            took, tracebacks, failed = start_once(settings, way, extras, logs, run)
            times[way].append(took)
            alarms[way] = (tracebacks, failed)
    base = Summary.of(times["plain"]).median
    rows = [
        (
            way,
            f"{Summary.of(times[way]).s()}; x{Summary.of(times[way]).median / base:.2f} of plain; "
            f"{alarms[way][0]} tracebacks, {alarms[way][1]} IMPORT FAILED",
        )
        for way in WAYS
    ]
    rows.append(("installed adds", f"{size_of(extras) / 2**20:.1f} MiB to the image ({len(EXTRAS)} packages)"))
    print_table(f"ComfyUI spawn to ready (cpu, test models; logs in {logs})", rows)


if __name__ == "__main__":
    main()
