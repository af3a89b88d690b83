"""The command line: the two commands' flags, and what they become (a plan, an endpoint, a search space).

Every check names its flag (``InputError``); ``__main__`` turns one into a usage error, exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from handler.capacity import prices, search, traffic
from handler.capacity.endpoint import Endpoint, Scaler
from handler.capacity.plan import Measured, Plan, by_pool, resolve
from handler.capacity.traffic import InputError, Traffic

DESCRIPTION = "How many workers, which GPU, what it costs, at what p95: a RunPod endpoint simulated from job times."
DEFAULT_POOL = "ADA_24"  # the first of .runpod/hub.json's pools
DEFAULT_HOURS = 24.0
# recommend simulates many configurations: without --hours, a busy endpoint's day is shortened to this many requests.
SEARCH_REQUESTS = 200_000
# The flags a pool can have its own of ([POOL=]VALUE, repeatable): flag, metavar, help.
PER_POOL = (
    ("--job-time", "[POOL=]SPEC", "fixed:S, exp:MEAN or lognormal:P50,P95 (seconds)"),
    ("--from-report", "[POOL=]FILE", "the acceptance run's report.json: executionTime and the cold start's delayTime"),
    ("--cold-start-s", "[POOL=]S", "seconds from a worker's start to its first job (default: the report's, else 30)"),
)


def common(parser: argparse.ArgumentParser) -> None:
    """Traffic, job time, prices, the scaler's timing and output: the same for both commands."""
    load = parser.add_argument_group("traffic (one of)").add_mutually_exclusive_group(required=True)
    load.add_argument("--rate-per-min", type=float, metavar="R", help="Poisson arrivals, R requests a minute")
    load.add_argument("--trace", type=Path, metavar="FILE", help="a CSV of request timestamps (seconds or ISO 8601)")
    parser.add_argument(
        "--hours",
        type=float,
        metavar="H",
        help=f"simulated time (default 24; recommend: at most {SEARCH_REQUESTS:,} requests' worth; a trace: its span)",
    )
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="the same seed gives the same run (1)")
    jobs = parser.add_argument_group("job time and cold start ([POOL=] gives one pool its own)")
    for flag, metavar, text in PER_POOL:
        jobs.add_argument(flag, action="append", default=[], metavar=metavar, help=text)
    parser.add_argument("--price-per-s", metavar="FLEX[,ACTIVE]", help="USD a second (default: data/prices.json)")
    parser.add_argument(
        "--scaler-look-s",
        type=float,
        default=1.0,
        metavar="S",
        help="how often the scaler looks at the queue (1; not documented by RunPod)",
    )
    parser.add_argument(
        "--starts-per-look",
        type=int,
        default=0,
        metavar="N",
        help="workers started at one look at most (0: as many as its rule asks)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a picture (PNG, SVG, PDF by the name)")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="python -m handler.capacity", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser("simulate", help="one endpoint configuration under one traffic pattern")
    common(simulate)
    settings = simulate.add_argument_group("endpoint settings (RunPod's names; defaults are RunPod's)")
    settings.add_argument("--active", type=int, default=0, metavar="N", help="active (min) workers (0)")
    settings.add_argument("--max", type=int, default=3, metavar="N", help="max workers (3)")
    settings.add_argument("--idle-timeout-s", type=float, default=5.0, metavar="S", help="idle timeout (5)")
    settings.add_argument(
        "--scaler",
        default="queue-delay:4",
        metavar="SPEC",
        help="queue-delay:SECONDS or request-count:N (queue-delay:4)",
    )
    settings.add_argument("--pool", default=DEFAULT_POOL, metavar="ID", help=f"GPU pool ({DEFAULT_POOL})")
    recommend = commands.add_parser("recommend", help="the cheapest configuration that meets a p95 latency target")
    common(recommend)
    recommend.add_argument("--p95-s", type=float, required=True, metavar="S", help="p95 latency target, seconds")
    space = recommend.add_argument_group("search space")
    space.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="ID",
        help=f"a pool to consider, repeatable (default: the pools named in [POOL=] flags, else {DEFAULT_POOL})",
    )
    space.add_argument("--search-active", metavar="LIST", help="active workers to try (default: 0, 1, load/2, load)")
    space.add_argument(
        "--search-idle-timeout-s",
        metavar="LIST",
        help=f"idle timeouts to try ({','.join(f'{s:g}' for s in search.DEFAULT_IDLE_TIMEOUTS)})",
    )
    space.add_argument("--search-scaler", metavar="LIST", help=f"scalers to try ({','.join(search.DEFAULT_SCALERS)})")
    space.add_argument(
        "--search-max-limit",
        type=int,
        metavar="N",
        help="the largest max tried (default: 1.5 x the busiest five minutes' load, + 2)",
    )
    return parser, {"simulate": simulate, "recommend": recommend}


def _positive(value: float | None, flag: str, *, zero: bool = False) -> None:
    """A finite number above 0 (or >= 0); None is a flag left out."""
    if value is not None and not ((value >= 0 if zero else value > 0) and math.isfinite(value)):
        raise InputError(flag, f"must be a number {'>= 0' if zero else 'above 0'}, not {value:g}")


def traffic_source(args: argparse.Namespace) -> Callable[[np.random.Generator], Traffic]:
    _positive(args.hours, "--hours")
    if args.trace is not None:
        fixed = traffic.trace(args.trace, args.hours)  # read once: a bad trace fails before any run
        return lambda rng: fixed
    _positive(args.rate_per_min, "--rate-per-min")
    hours = args.hours or DEFAULT_HOURS
    if args.hours is None and args.command == "recommend":
        hours = min(hours, SEARCH_REQUESTS / (args.rate_per_min * 60))
    return partial(traffic.poisson, args.rate_per_min, hours)


def plan(args: argparse.Namespace, pools: list[str]) -> Plan:
    _positive(args.scaler_look_s, "--scaler-look-s")
    if args.starts_per_look < 0:
        raise InputError("--starts-per-look", f"must be 0 (no limit) or more, not {args.starts_per_look}")
    measured = Measured(
        by_pool(args.job_time),
        by_pool(args.from_report),
        by_pool(args.cold_start_s),
        args.price_per_s,
        args.scaler_look_s,
        args.starts_per_look,
    )
    price_list = prices.load()
    source = traffic_source(args)
    compared = len(pools) > 1
    return Plan(source, {pool: resolve(measured, pool, price_list, compared=compared) for pool in pools}, args.seed)


def scaler(text: str, flag: str) -> Scaler:
    try:
        return Scaler.parse(text)
    except ValueError as exc:
        raise InputError(flag, str(exc)) from None


def endpoint(args: argparse.Namespace) -> Endpoint:
    if args.active < 0:
        raise InputError("--active", f"must be 0 or more, not {args.active}")
    if args.max < 1:
        raise InputError("--max", f"must be 1 or more, not {args.max}")
    if args.max < args.active:
        raise InputError("--max", f"{args.max} is below --active {args.active}: max counts the active workers too")
    _positive(args.idle_timeout_s, "--idle-timeout-s", zero=True)
    return Endpoint(args.active, args.max, args.idle_timeout_s, scaler(args.scaler, "--scaler"), args.pool)


def recommend_pools(args: argparse.Namespace) -> list[str]:
    if args.pool:
        return list(dict.fromkeys(args.pool))
    named = Measured(by_pool(args.job_time), by_pool(args.from_report), {}, None, 1.0, 0).pools_named()
    return named or [DEFAULT_POOL]


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(flag, f"{text!r} is not a comma-separated list of numbers") from None
    if not all(value >= 0 and math.isfinite(value) for value in values):
        raise InputError(flag, f"{text!r}: every value must be >= 0")
    return values


def space(args: argparse.Namespace, the_plan: Plan) -> search.Space:
    _positive(args.p95_s, "--p95-s")
    mean_job_s = max(the_plan.pools[pool].job_time.mean_s() for pool in the_plan.pools)
    drawn = the_plan.drawn(next(iter(the_plan.pools)), the_plan.seed)[0]
    rate = drawn.arrivals.size / drawn.horizon_s
    limit = args.search_max_limit or search.default_max_limit(traffic.peak_rate_per_s(drawn), mean_job_s)
    if limit < 1:
        raise InputError("--search-max-limit", f"must be 1 or more, not {limit}")
    if args.search_active is not None:
        actives = tuple(sorted({int(v) for v in _numbers(args.search_active, "--search-active")}))
    else:
        actives = search.default_actives(rate * mean_job_s, limit)
    idle = args.search_idle_timeout_s or ",".join(f"{s:g}" for s in search.DEFAULT_IDLE_TIMEOUTS)
    scalers = (args.search_scaler or ",".join(search.DEFAULT_SCALERS)).split(",")
    return search.Space(
        pools=tuple(the_plan.pools),
        actives=actives,
        idle_timeouts=tuple(_numbers(idle, "--search-idle-timeout-s")),
        scalers=tuple(scaler(text, "--search-scaler") for text in scalers),
        max_limit=limit,
    )
