"""The capacity planner's speed: how long ``simulate`` takes for a day of traffic, and how that grows with the
request rate and the simulated hours; and how long a ``recommend`` search takes.

Each simulation is the whole of what ``simulate`` computes: Poisson arrivals and lognormal job times drawn, the
event loop, the figures. The endpoint is sized for the load (max = 1.5 x the mean busy workers + 2, idle timeout
60 s, queue-delay:4, cold start 30 s), so the loop sees scaling, queues and cold starts. No ComfyUI.

    .venv/bin/python -m bench.capacity_speed [--rates 1,3,10] [--hours 1,6,24] [--reps 3] [--recommend 6,60]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from bench.harness import Summary, print_table
from handler.capacity import engine
from handler.capacity.__main__ import main as capacity
from handler.capacity.endpoint import Endpoint, Scaler, Timing
from handler.capacity.jobtime import parse
from handler.capacity.result import Price, summary
from handler.capacity.traffic import poisson

JOB_TIME = "lognormal:4.3,5"  # BENCHMARKS.md's H100 run: warm jobs p50 4.3 s, p90 4.8 s
COLD_START_S = 30.0


def simulate(rate_per_s: float, hours: float, seed: int) -> int:
    """One simulation, as simulate runs it; returns the number of requests."""
    rng = np.random.default_rng(seed)
    traffic = poisson(rate_per_s * 60, hours, rng)
    job_time = parse(JOB_TIME)
    jobs = job_time.draw(rng, traffic.arrivals.size)
    workers = math.ceil(1.5 * rate_per_s * job_time.mean_s()) + 2
    endpoint = Endpoint(0, workers, 60.0, Scaler("queue-delay", 4.0), "ADA_24")
    tally = engine.run(traffic.arrivals, jobs, endpoint, Timing(COLD_START_S), horizon_s=traffic.horizon_s)
    summary(tally, COLD_START_S, Price(0.00031, 0.00021))
    return int(traffic.arrivals.size)


def timed(action: Callable[[], object], reps: int) -> Summary:
    took = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        took.append(time.perf_counter() - started)
    return Summary.of(took)


def numbers(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=numbers, default=[1.0, 3.0, 10.0], help="requests a second (1,3,10)")
    parser.add_argument("--hours", type=numbers, default=[1.0, 6.0, 24.0], help="simulated hours (1,6,24)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each, for the median (3)")
    parser.add_argument("--recommend", type=numbers, default=[6.0, 60.0], help="requests a minute (6,60)")
    args = parser.parse_args(argv)
    rows = []
    for rate in args.rates:
        for hours in args.hours:
            requests = simulate(rate, hours, 0)
            took = timed(partial(simulate, rate, hours, 1), args.reps)
            rows.append(
                (
                    f"{rate:g}/s for {hours:g} h: {requests:,} requests",
                    f"{took.s()}; {took.median / requests * 1e6:.2f} us a request",
                )
            )
    print_table(f"simulate, {JOB_TIME}, cold start {COLD_START_S:g} s", rows)
    rows = []
    for per_min in args.recommend:
        command = ["recommend", "--rate-per-min", f"{per_min:g}", "--job-time", JOB_TIME, "--p95-s", "10",
                   "--cold-start-s", f"{COLD_START_S:g}", "--json"]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            took = timed(partial(capacity, command), 1)
        simulated = json.loads(printed.getvalue())["simulated"]
        rows.append((f"{per_min:g}/min, default space and hours", f"{took.s()}; {simulated} configurations"))
    if rows:
        print_table("recommend --p95-s 10, one run each", rows)


if __name__ == "__main__":
    main()
