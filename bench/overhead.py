"""Handler overhead: everything outside ComfyUI's own execution, against a minimal direct client.

One ComfyUI serves three clients, interleaved job by job so that drift hits all alike (test models, or
production mode when ALPHA_MODELS_DIR names a models folder: see bench/harness.py):

* ``runsync``: RunPod's local API (``python -m handler --rp_serve_api``), POST /runsync, response parsed;
* ``handler``: the RunPod handler's job function called in-process (core + base64 output);
* ``production``: the RunPod worker as deployed (``python -m handler``, the SDK's production loop: job-take,
  job-done, job-stop, progress updates) against the loopback job-API emulator (tests/runpod_emulator.py); its
  wall time runs from the emulator answering job-take with the job to the emulator receiving job-done;
* ``direct``: bench/direct_client.py, the baseline.

Overhead of a job = its wall time minus ComfyUI's execution time (its own execution_start and
execution_success timestamps: from /history for the direct client, from the same events for the handler).
Prints medians, p90, min/max, the ratios to the direct client, how many jobs met ComfyUI's post-prompt
gc.collect() (a stall of its server; custom_nodes/alpha_gc_freeze), and where the handler's
overhead goes.

    .venv/bin/python -m bench.overhead [--jobs 10] [--size 256] [--steps 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from bench.direct_client import DirectClient
from bench.harness import (
    Summary,
    bench_settings,
    describe,
    log_folder,
    print_table,
    run_arguments,
    run_shape,
    running_comfyui,
)
from handler import logs
from handler.doors.runpod.worker import handle_job
from handler.generate import Generator
from handler.settings import Settings
from tests.helpers import runpod_api
from tests.runpod_emulator import Emulator, spawn_worker

MODES = ("production", "runsync", "handler", "direct")
STALL_S = 0.1


class Job:
    """One measured job: wall and execution seconds, and the handler's own timings when it reports them."""

    def __init__(self, wall_s: float, execution_s: float, timings_ms: dict[str, Any] | None = None) -> None:
        self.wall_s = wall_s
        self.execution_s = execution_s
        self.overhead_s = wall_s - execution_s
        self.timings_ms = timings_ms or {}


def from_output(output: dict[str, Any], wall_s: float) -> Job:
    if output.get("status") != "success":
        raise RuntimeError(f"job failed: {output.get('code')}: {output.get('message')}")
    timings = output["info"]["timings_ms"]
    return Job(wall_s, timings["comfyui_execution"] / 1000, timings)


@contextlib.contextmanager
def production_worker(settings: Settings, log_path: Path) -> Iterator[Emulator]:
    """``python -m handler`` in production mode against the emulator, in front of an already running ComfyUI."""
    with Emulator(hold_s=5.0) as emulator, log_path.open("wb") as log:
        proc = spawn_worker(settings, emulator, log)
        try:
            deadline = time.monotonic() + 120
            while not emulator.of("take"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the production worker did not poll; see {log_path}")
                time.sleep(0.1)
            yield emulator
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def measure(settings: Settings, jobs: int, log_dir: Path) -> dict[str, list[Job]]:
    results: dict[str, list[Job]] = {mode: [] for mode in MODES}
    with (
        running_comfyui(settings, log_dir / "comfyui.log"),
        (log_dir / "worker.log").open("wb") as worker_log,
        runpod_api(settings, worker_log) as api,
        production_worker(settings, log_dir / "production.log") as emulator,
        DirectClient(settings.comfyui_url) as direct,
    ):
        generator = Generator(settings)
        width, height, steps = run_shape(settings, generator.workflow)
        http = requests.Session()

        def run_runsync(seed: int) -> Job:
            started = time.perf_counter()
            response = http.post(
                f"{api.url}/runsync", json={"input": {"prompt": "a glass apple", "seed": seed}}, timeout=600
            )
            body = response.json()
            return from_output(body["output"], time.perf_counter() - started)

        def run_production(seed: int) -> Job:
            job_id = emulator.submit({"prompt": "a glass apple", "seed": seed}, f"bench-{seed}")
            body = emulator.wait_result(job_id, 600)
            (taken,) = [a for a in emulator.of("take", job_id)]
            (done,) = [a for a in emulator.of("done", job_id) if a.status == 200]
            return from_output(body["output"], done.at - taken.answered)

        def run_handler(seed: int) -> Job:
            started = time.perf_counter()
            output = handle_job(generator, {"id": f"bench-{seed}", "input": {"prompt": "a glass apple", "seed": seed}})
            return from_output(output, time.perf_counter() - started)

        def run_direct(seed: int) -> Job:
            graph = generator.workflow.apply(
                prompt="a glass apple",
                negative_prompt=None,
                seed=seed,
                width=width,
                height=height,
                filename_prefix=f"direct_{seed}",
                steps=steps,
            )
            done = direct.run(graph)
            return Job(done.wall_s, done.execution_s)

        runners: dict[str, Callable[[int], Job]] = {
            "production": run_production,
            "runsync": run_runsync,
            "handler": run_handler,
            "direct": run_direct,
        }
        for mode in MODES:  # not measured: loads the models, warms each path's connections
            runners[mode](1)
        for i in range(jobs):
            order = MODES[i % len(MODES) :] + MODES[: i % len(MODES)]
            for j, mode in enumerate(order):
                results[mode].append(runners[mode](1000 + i * len(MODES) + j))
        http.close()
    return results


def report(results: dict[str, list[Job]], settings: Settings) -> None:
    overhead = {mode: Summary.of([job.overhead_s for job in jobs]) for mode, jobs in results.items()}
    walls = {mode: Summary.of([job.wall_s for job in jobs]) for mode, jobs in results.items()}
    rows: list[tuple[str, str]] = []
    for mode in MODES:
        rows.append((f"{mode}: job wall", walls[mode].s()))
        rows.append((f"{mode}: ComfyUI execution", Summary.of([job.execution_s for job in results[mode]]).s()))
        rows.append((f"{mode}: overhead (wall - execution)", overhead[mode].ms()))
    direct = overhead["direct"].median
    for mode in ("production", "runsync", "handler"):
        rows.append((f"ratio {mode} / direct (median overhead)", f"{overhead[mode].median / direct:.2f} x"))
        rows.append((f"{mode} overhead / median job wall", f"{overhead[mode].median / walls[mode].median:.2%}"))
    # ComfyUI runs gc.collect() after a prompt when 10 s have passed since the last one; its HTTP server stalls
    # meanwhile. Whoever talks to it then pays: the direct client reading /history, or the next job's submit.
    calm = {mode: [job.overhead_s for job in jobs if job.overhead_s < STALL_S] for mode, jobs in results.items()}
    for mode in MODES:
        rows.append(
            (
                f"{mode}: jobs that met ComfyUI's gc pause",
                f"{len(results[mode]) - len(calm[mode])} of {len(results[mode])} (overhead >= {STALL_S * 1000:.0f} ms)",
            )
        )
    if all(calm.values()):
        quiet = {mode: Summary.of(values).median for mode, values in calm.items()}
        for mode in ("production", "runsync", "handler"):
            rows.append(
                (
                    f"ratio {mode} / direct, jobs without the pause",
                    f"{quiet[mode] / quiet['direct']:.2f} x ({quiet[mode] * 1000:.1f} / "
                    f"{quiet['direct'] * 1000:.1f} ms)",
                )
            )
    # Where the in-process handler's overhead goes, from its own timings (medians, ms).
    handler = results["handler"]

    def median_ms(values: list[float]) -> str:
        return f"{Summary.of(values).median * 1000:.1f} ms"

    rows.append(
        (
            "handler: submit + wait beyond execution",
            median_ms([(j.timings_ms["comfyui_wait"] - j.timings_ms["comfyui_execution"]) / 1000 for j in handler]),
        )
    )
    rows.append(("handler: fetch + RGBA check", median_ms([j.timings_ms["fetch"] / 1000 for j in handler])))
    rows.append(
        (
            "handler: base64 + output (after the core)",
            median_ms([j.wall_s - j.timings_ms["total"] / 1000 for j in handler]),
        )
    )
    runsync = results["runsync"]
    rows.append(
        (
            "runsync: RunPod API + HTTP (beyond the core)",
            median_ms([j.wall_s - j.timings_ms["total"] / 1000 for j in runsync]),
        )
    )
    production = results["production"]
    rows.append(
        (
            "production: SDK + job API (beyond the core)",
            median_ms([j.wall_s - j.timings_ms["total"] / 1000 for j in production]),
        )
    )
    print_table(f"handler overhead, {describe(settings)}", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10, help="measured jobs per client (default 10)")
    parser.add_argument("--logs", type=Path, help="folder for ComfyUI's and the worker's logs")
    run_arguments(parser)
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    settings = bench_settings(args)
    report(measure(settings, args.jobs, log_folder(args.logs, "alpha-bench-")), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
