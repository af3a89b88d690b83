"""How long a job runs: a distribution given on the command line, or the acceptance run's measured job times.

``--job-time fixed:S``, ``exp:MEAN`` or ``lognormal:P50,P95`` (seconds); ``--from-report report.json`` takes the
``executionTime`` RunPod reported for each of its prompts' jobs (``timings_ms.execution``; not its option jobs')
as an empirical distribution, drawn with replacement, and the first job's ``delayTime`` (``timings_ms.queue``) as
the cold start when the report says that job met one.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handler.capacity.traffic import InputError

Z95 = 1.6448536269514722  # the standard normal's 95th percentile: a lognormal's p95 = p50 * exp(Z95 * sigma)
KINDS = ("fixed", "exp", "lognormal")


@dataclass(frozen=True)
class JobTime:
    kind: str  # fixed, exp, lognormal or measured
    params: tuple[float, ...]
    source: str
    measured: np.ndarray = field(default_factory=lambda: np.empty(0))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, self.params[0])
        if self.kind == "exp":
            return rng.exponential(self.params[0], n)
        if self.kind == "lognormal":
            p50, p95 = self.params
            return rng.lognormal(math.log(p50), math.log(p95 / p50) / Z95, n)
        return rng.choice(self.measured, n)

    def mean_s(self) -> float:
        if self.kind in ("fixed", "exp"):
            return self.params[0]
        if self.kind == "lognormal":
            p50, p95 = self.params
            return p50 * math.exp((math.log(p95 / p50) / Z95) ** 2 / 2)
        return float(self.measured.mean())


def parse(text: str, flag: str = "--job-time") -> JobTime:
    kind, _, raw = text.partition(":")
    if kind not in KINDS:
        raise InputError(
            flag, f"{text!r}: the kind is one of {', '.join(KINDS)} (fixed:S, exp:MEAN, lognormal:P50,P95)"
        )
    try:
        params = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise InputError(flag, f"{text!r}: the values are numbers of seconds") from None
    if len(params) != (2 if kind == "lognormal" else 1):
        raise InputError(flag, f"{text!r}: {kind} takes {'P50,P95' if kind == 'lognormal' else 'one value'}")
    if not all(value > 0 and math.isfinite(value) for value in params):
        raise InputError(flag, f"{text!r}: every value must be a number of seconds above 0")
    if kind == "lognormal" and params[1] < params[0]:
        raise InputError(flag, f"{text!r}: P95 is below P50")
    return JobTime(kind, params, f"{flag} {text}")


@dataclass(frozen=True)
class Report:
    """What the acceptance run measured: job times and, when its first job met one, the cold start."""

    job_time: JobTime
    cold_start_s: float | None
    cold_start_source: str
    note: str  # what the report holds that the model leaves out


def _load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report, and each job's ``timings_ms``."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError("--from-report", f"cannot read {path}: {exc}") from None
    cases = report.get("cases") if isinstance(report, dict) else None
    if not isinstance(cases, list):
        raise InputError("--from-report", f"{path} is not an acceptance report (no 'cases' list)")
    # The prompts' jobs only: the jobs of the options (a layer mode runs twice) are not the traffic planned for.
    prompts = [case for case in cases if isinstance(case, dict) and case.get("kind", "prompt") == "prompt"]
    return report, [case.get("timings_ms") or {} for case in prompts]


def _ms(timings: list[dict[str, Any]], key: str) -> list[float]:
    return [float(t[key]) for t in timings if isinstance(t.get(key), int | float) and not isinstance(t[key], bool)]


def _execution(path: Path, timings: list[dict[str, Any]]) -> tuple[list[float], str]:
    """RunPod's executionTime of each job; without it (a local API answers none), the worker's own total."""
    execution = _ms(timings, "execution")
    if execution:
        return execution, f"{path.name}: executionTime of {len(execution)} jobs"
    totals = [
        float(t["worker"]["total"]) for t in timings if isinstance(t.get("worker"), dict) and "total" in t["worker"]
    ]
    if totals:
        return totals, f"{path.name}: the worker's own timings_ms.total of {len(totals)} jobs (no executionTime)"
    raise InputError("--from-report", f"{path} has no job with an executionTime (or a worker timing)")


def _cold_start(path: Path, timings: list[dict[str, Any]], detected: bool) -> tuple[float | None, str]:
    """The first job's delayTime beyond the others' median, when the report found that job cold."""
    if not detected:
        return None, f"{path.name}: its first job met no cold start, so it measured none"
    queue = [t.get("queue") for t in timings]
    if not isinstance(queue[0], int | float) or len(timings) < 2:
        return None, f"{path.name}: no delayTime for its first job"
    warm = statistics.median(_ms(timings[1:], "queue") or [0.0])
    return max(0.0, (queue[0] - warm) / 1000), f"{path.name}: first job's delayTime less the others' median"


def read_report(path: Path) -> Report:
    report, timings = _load(path)
    if not timings:
        raise InputError("--from-report", f"{path} has no jobs")
    execution, source = _execution(path, timings)
    detected = isinstance(report.get("cold_start"), dict) and report["cold_start"].get("detected") is True
    cold, cold_source = _cold_start(path, timings, detected)
    warm_queue = _ms(timings[1:], "queue")
    note = (
        f"each job's dispatch (delayTime of warm jobs, median {statistics.median(warm_queue):.0f} ms) is not modelled"
        if warm_queue
        else ""
    )
    median = statistics.median(execution) / 1000
    job_time = JobTime("measured", (median,), f"{source}, median {median:.2f} s", np.asarray(execution) / 1000)
    return Report(job_time, cold, cold_source, note)
