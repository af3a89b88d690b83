"""A run's tally as the figures an operator reads: the JSON keys of ``simulate --json`` (and of ``recommend``'s
``result``), a documented contract (README, "Capacity planner")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from handler.capacity.engine import Tally

HOUR_S = 3600.0
PERCENTILES = {"p50": 50, "p95": 95, "p99": 99}


@dataclass(frozen=True)
class Price:
    """US dollars per second of one worker: flex workers, and active ones (RunPod bills them at a discount)."""

    flex_per_s: float
    active_per_s: float


def spread(values: np.ndarray) -> dict[str, float]:
    """``{mean, p50, p95, p99}`` in seconds; numpy's linear interpolation between order statistics."""
    if values.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0}
    points = np.percentile(values, list(PERCENTILES.values()))
    return {"mean": round(float(values.mean()), 3)} | {
        key: round(float(point), 3) for key, point in zip(PERCENTILES, points, strict=True)
    }


def billed(tally: Tally, cold_start_s: float) -> dict[str, float]:
    """Billed worker-seconds, split: busy (running jobs), cold start (flex workers starting) and idle (the rest:
    idle timeouts, active workers without a job, and the rounding up to whole seconds)."""
    total = tally.billed_flex_s + tally.billed_active_s
    busy = tally.busy_flex_s + tally.busy_active_s
    cold = tally.cold_starts * cold_start_s
    return {"busy": round(busy, 1), "idle": round(total - busy - cold, 1), "cold_start": round(cold, 1), "total": total}


def cost(tally: Tally, price: Price) -> float:
    return tally.billed_flex_s * price.flex_per_s + tally.billed_active_s * price.active_per_s


def summary(tally: Tally, cold_start_s: float, price: Price) -> dict[str, Any]:
    jobs = tally.waits.size
    hours = tally.span_s / HOUR_S
    seconds = billed(tally, cold_start_s)
    usd = cost(tally, price)
    return {
        "jobs": jobs,
        "hours": round(hours, 3),
        "wait_s": spread(tally.waits),
        "latency_s": spread(tally.waits + tally.job_s),
        "cold_starts": {
            "per_hour": round(tally.cold_starts / hours, 2) if hours else 0.0,
            "total": tally.cold_starts,
            "jobs_met": tally.cold_jobs,
            "jobs_met_share": round(tally.cold_jobs / jobs, 4) if jobs else 0.0,
        },
        "workers": {
            "busy": round(seconds["busy"] / tally.span_s, 3),
            "idle": round(seconds["idle"] / tally.span_s, 3),
            "starting": round(seconds["cold_start"] / tally.span_s, 3),
            "utilisation": round(seconds["busy"] / seconds["total"], 4) if seconds["total"] else 0.0,
        },
        "billed_worker_s": seconds,
        "cost_usd": {
            "per_hour": round(usd / hours, 4) if hours else 0.0,
            "per_1000_jobs": round(usd / jobs * 1000, 4) if jobs else 0.0,
            "total": round(usd, 4),
        },
    }
