"""What a run is planned from: the traffic, and for each GPU pool its job time, cold start and price, each with
where it came from.

A pool's figures come from the most specific input: a flag prefixed with the pool (``--job-time ADA_24=...``,
``--from-report AMPERE_80=report.json``, ``--cold-start-s ADA_24=40``) before one without a prefix, an explicit
flag before a report, a report before a default. Job times differ by GPU, so comparing pools means measuring
each one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handler.capacity import engine
from handler.capacity.endpoint import Endpoint, Timing
from handler.capacity.jobtime import JobTime, Report, parse, read_report
from handler.capacity.prices import PriceList, override
from handler.capacity.result import Price, summary
from handler.capacity.traffic import InputError, Traffic

POOL_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*)=(.+)$")
DEFAULT_COLD_START_S = 30.0
DEFAULT_COLD_START_SOURCE = (
    "default 30 s, nothing measured (BENCHMARKS.md's H100 run: ComfyUI ready in 19.9 s, then a warm-up of about "
    "10 s; no image pull): give --cold-start-s, or a report whose first job met a cold start"
)


def by_pool(values: list[str]) -> dict[str | None, str]:
    """``[POOL=]VALUE`` flags by pool (None: every pool without its own)."""
    found: dict[str | None, str] = {}
    for value in values:
        match = POOL_PREFIX.match(value)
        found[match.group(1) if match else None] = match.group(2) if match else value
    return found


@dataclass(frozen=True)
class PoolPlan:
    pool: str
    job_time: JobTime
    timing: Timing
    price: Price
    sources: dict[str, str]


@dataclass(frozen=True)
class Measured:
    """The job-time flags as given, before they are resolved for a pool."""

    job_times: dict[str | None, str]
    reports: dict[str | None, str]
    cold_starts: dict[str | None, str]
    price_per_s: str | None
    look_s: float
    starts_per_look: int

    def pools_named(self) -> list[str]:
        return sorted({pool for flags in (self.job_times, self.reports) for pool in flags if pool is not None})


def _pick(flags: dict[str | None, str], pool: str) -> str | None:
    return flags.get(pool, flags.get(None))


def _cold_start(measured: Measured, pool: str, report: Report | None) -> tuple[float, str]:
    given = _pick(measured.cold_starts, pool)
    if given is not None:
        try:
            seconds = float(given)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0:
            raise InputError("--cold-start-s", f"{given!r} is not a number of seconds >= 0")
        return seconds, f"--cold-start-s {given}"
    if report is not None and report.cold_start_s is not None:
        return report.cold_start_s, f"{report.cold_start_s:.2f} s, {report.cold_start_source}"
    why = f"; {report.cold_start_source}" if report is not None else ""
    return DEFAULT_COLD_START_S, DEFAULT_COLD_START_SOURCE + why


def resolve(measured: Measured, pool: str, prices: PriceList, *, compared: bool = False) -> PoolPlan:
    """One pool's job time, cold start and price, each with its source. ``compared``: other pools are planned
    too, so a job time that is not this pool's own is said to be borrowed."""
    price = prices.price(pool)
    path = _pick(measured.reports, pool)
    report = read_report(Path(path)) if path is not None else None
    spec = _pick(measured.job_times, pool)
    if spec is not None:
        job_time = parse(spec)
    elif report is not None:
        job_time = report.job_time
    else:
        raise InputError("--job-time", f"no job time for pool {pool}: give --job-time or --from-report")
    cold, cold_source = _cold_start(measured, pool, report)
    price_source = prices.source
    if measured.price_per_s is not None:
        price, price_source = override(measured.price_per_s), f"--price-per-s {measured.price_per_s}"
    timing = Timing(cold, measured.look_s, measured.starts_per_look)
    borrowed = compared and pool not in measured.job_times and pool not in measured.reports
    sources = {
        "job_time": f"{job_time.source} (mean {job_time.mean_s():.2f} s)"
        + ("; not measured on this pool: the same for every pool without its own ([POOL=])" if borrowed else ""),
        "cold_start_s": cold_source,
        "price_per_s": f"{price_source}: flex {price.flex_per_s:g}, active {price.active_per_s:g}",
        "scaler": f"looks every {timing.look_s:g} s (--scaler-look-s), starts "
        f"{timing.starts_per_look or 'as many as its rule asks'} a look (--starts-per-look): "
        "RunPod's documentation states neither",
    }
    if report is not None and report.note:
        sources["not_modelled"] = report.note
    return PoolPlan(pool, job_time, timing, price, sources)


@dataclass
class Plan:
    """The traffic (drawn again for each seed) and the pools' figures; simulates one configuration at a seed."""

    traffic: Callable[[np.random.Generator], Traffic]
    pools: dict[str, PoolPlan]
    seed: int
    _drawn: dict[tuple[int, str], tuple[Traffic, np.ndarray]] = field(default_factory=dict)

    def drawn(self, pool: str, seed: int) -> tuple[Traffic, np.ndarray]:
        """The requests and their job times; the same for every configuration at one seed (common random
        numbers, so configurations differ by their settings, not by their luck)."""
        if (seed, pool) not in self._drawn:
            traffic = self.traffic(np.random.default_rng([seed, 0]))
            jobs = self.pools[pool].job_time.draw(np.random.default_rng([seed, 1]), traffic.arrivals.size)
            self._drawn[(seed, pool)] = (traffic, jobs)
        return self._drawn[(seed, pool)]

    def run(self, endpoint: Endpoint, seed: int | None = None, sample_s: float | None = None) -> engine.Tally:
        if endpoint.pool not in self.pools:
            raise InputError("--pool", f"no figures for pool {endpoint.pool}")
        traffic, jobs = self.drawn(endpoint.pool, self.seed if seed is None else seed)
        return engine.run(
            traffic.arrivals,
            jobs,
            endpoint,
            self.pools[endpoint.pool].timing,
            horizon_s=traffic.horizon_s,
            sample_s=sample_s,
        )

    def document(self, endpoint: Endpoint, tally: engine.Tally, seed: int | None = None) -> dict[str, Any]:
        """What ``simulate --json`` prints: the settings, the inputs and where they came from, then the figures."""
        pool = self.pools[endpoint.pool]
        seed = self.seed if seed is None else seed
        traffic, _ = self.drawn(endpoint.pool, seed)
        head = {"settings": endpoint.choice(), "traffic": traffic.source, "seed": seed, "sources": pool.sources}
        return head | summary(tally, pool.timing.cold_start_s, pool.price)

    def simulate(self, endpoint: Endpoint, seed: int | None = None) -> dict[str, Any]:
        return self.document(endpoint, self.run(endpoint, seed), seed)
