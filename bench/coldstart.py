"""Cold start: ``bootstrap.sh`` start to the first job done, phase by phase, with warm-up on and off.

Each run starts ``./bootstrap.sh --rp_serve_api`` (test models; a fresh ComfyUI on a free port), stamps
the log lines that end each phase as they arrive, waits for RunPod's local API to answer, sends one job
to /runsync and stops the worker with SIGTERM. Runs alternate between warm-up on and off.

Phases: process start to ComfyUI launched (setup check, imports, GPU preflight) -> ComfyUI ready ->
warm-up done (or skipped) -> API answers (the RunPod worker's start) -> first job done.

With ``--baseline REF`` every run is made twice, in alternation: by this checkout ("after") and by commit
REF ("before"), exported with ``git archive`` into a temporary folder that uses this checkout's virtualenv and
ComfyUI, so that one invocation gives both columns and their difference.

    .venv/bin/python -m bench.coldstart [--runs 2] [--baseline REF] [--size 256] [--steps 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import requests

from bench.harness import Summary, bench_settings, describe, log_folder, print_table, run_arguments
from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import free_port

# The log line that ends each phase, in order.
MARKERS = (
    ("ComfyUI launched", "starting ComfyUI:"),
    ("ComfyUI ready", "ComfyUI ready on port"),
    ("warm-up done", "warm-up "),
    ("RunPod worker started", "RunPod worker starting"),
)
# Stamped when seen: the early-started worker's "loaded" line (not in older commits).
OPTIONAL_MARKERS = (("worker loaded", "RunPod worker loaded in"),)
PHASE_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 60.0


class Stamps(threading.Thread):
    """Reads the process's output, writes it to a log file and stamps the first line with each marker."""

    def __init__(self, stream: IO[bytes], log: IO[bytes], started: float) -> None:
        super().__init__(daemon=True)
        self.stream, self.log, self.started = stream, log, started
        self.at: dict[str, float] = {}
        self.changed = threading.Condition()

    def run(self) -> None:
        for raw in self.stream:
            now = time.monotonic() - self.started
            self.log.write(raw)
            line = raw.decode(errors="replace")
            with self.changed:
                for name, marker in MARKERS + OPTIONAL_MARKERS:
                    if name not in self.at and marker in line:
                        self.at[name] = now
                self.changed.notify_all()
        with self.changed:
            self.at["exited"] = time.monotonic() - self.started
            self.changed.notify_all()

    def wait_for(self, name: str, timeout_s: float) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: name in self.at or "exited" in self.at, timeout_s):
                raise TimeoutError(f"no '{name}' line within {timeout_s:.0f} s")
            if name not in self.at:
                raise RuntimeError(f"bootstrap.sh exited before '{name}'; see {self.log.name}")
            return self.at[name]


def wait_api(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer in time")


def one_run(settings: Settings, warmup: bool, log_path: Path, root: Path = REPO) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, **settings.replace(warmup=warmup, comfyui_port=free_port()).to_env(), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(root / "bootstrap.sh"), "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        stamps = Stamps(proc.stdout, log, started)
        stamps.start()
        try:
            at = {name: stamps.wait_for(name, PHASE_TIMEOUT_S) for name, _ in MARKERS}
            wait_api(f"http://127.0.0.1:{port}/docs", time.monotonic() + PHASE_TIMEOUT_S)
            at["API answers"] = time.monotonic() - started
            body = requests.post(
                f"http://127.0.0.1:{port}/runsync", json={"input": {"prompt": "a glass apple"}}, timeout=PHASE_TIMEOUT_S
            ).json()
            at["first job done"] = time.monotonic() - started
            output = body.get("output") or {}
            if output.get("status") != "success":
                raise RuntimeError(f"first job failed: {output.get('code')}: {output.get('message')}")
            at["first job execution"] = output["info"]["timings_ms"]["comfyui_execution"] / 1000
            at.update({name: stamps.at[name] for name, _ in OPTIONAL_MARKERS if name in stamps.at})
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            stamps.join(10)
    return at


def phases(at: dict[str, float]) -> dict[str, float]:
    """Durations of each phase from the stamps (seconds since bootstrap.sh started); NaN where not stamped."""
    return {
        "start -> ComfyUI launched": at["ComfyUI launched"],
        "start -> worker loaded": at.get("worker loaded", float("nan")),
        "ComfyUI launched -> ready": at["ComfyUI ready"] - at["ComfyUI launched"],
        "ready -> warm-up done": at["warm-up done"] - at["ComfyUI ready"],
        "warm-up -> API answers": at["API answers"] - at["warm-up done"],
        "start -> API answers (ready)": at["API answers"],
        "first job (wall)": at["first job done"] - at["API answers"],
        "first job (ComfyUI execution)": at["first job execution"],
        "start -> first job done": at["first job done"],
    }


@contextlib.contextmanager
def exported(ref: str) -> Iterator[Path]:
    """Commit ref's tree in a temporary folder, with this checkout's virtualenv and ComfyUI linked in."""
    folder = Path(tempfile.mkdtemp(prefix="alpha-coldstart-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True, timeout=60)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True, timeout=60)
        for name in (".venv", ".comfyui"):
            (folder / name).symlink_to((REPO / name).resolve())
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def median(values: list[float]) -> float:
    seen = [value for value in values if not math.isnan(value)]  # NaN: not stamped in that variant
    return Summary.of(seen).median if seen else float("nan")


def cell(values: dict[str, float]) -> str:
    """One warm-up setting's medians: one variant alone, or before, after and their difference."""
    if len(values) == 1:
        return f"{next(iter(values.values())):7.2f} s"
    before, after = values["before"], values["after"]
    return f"before {before:6.2f}  after {after:6.2f}  diff {after - before:+6.2f} s"


def rows_of(runs: dict[tuple[bool, str], list[dict[str, float]]], variants: list[str]) -> list[tuple[str, str]]:
    """One row a phase: the medians of each warm-up setting (and variant)."""
    rows = []
    for name in runs[(True, variants[0])][0]:
        on, off = (
            cell({variant: median([run[name] for run in runs[(warmup, variant)]]) for variant in variants})
            for warmup in (True, False)
        )
        rows.append((name, f"warm-up on {on}   off {off}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs per warm-up setting (default 2)")
    parser.add_argument("--baseline", metavar="REF", help="also run commit REF's bootstrap.sh, in alternation")
    parser.add_argument("--logs", type=Path, help="folder for the runs' logs")
    run_arguments(parser)
    args = parser.parse_args(argv)
    settings = bench_settings(args)
    log_dir = log_folder(args.logs, "alpha-coldstart-")
    with contextlib.ExitStack() as stack:
        roots = {"after": REPO}
        if args.baseline:
            roots = {"before": stack.enter_context(exported(args.baseline)), **roots}
        runs: dict[tuple[bool, str], list[dict[str, float]]] = {(w, v): [] for w in (True, False) for v in roots}
        for i in range(args.runs):
            order = list(roots.items()) if i % 2 == 0 else list(reversed(roots.items()))
            for warmup in (True, False) if i % 2 == 0 else (False, True):
                for variant, root in order:
                    at = one_run(settings, warmup, log_dir / f"run{i}-warmup{int(warmup)}-{variant}.log", root)
                    runs[(warmup, variant)].append(phases(at))
    title = f"cold start, {describe(settings)}, median of {args.runs} runs each"
    if args.baseline:
        title += f"; before = {args.baseline}, after = this checkout"
    print_table(title, rows_of(runs, list(roots)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
