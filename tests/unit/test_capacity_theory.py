"""The capacity planner's simulation against queueing theory where theory is exact or well established: a fixed
pool of c workers (active = max = c), no cold start, Poisson arrivals (handler/capacity/theory.py has the
formulas, computed there; no figure here comes from the simulator).

Tolerances, stated: a simulated figure is the mean of one long run, and its noise is estimated by batch means (20
batches, each far longer than the queue's memory at these loads). It must lie within 4 standard errors of theory
plus an allowance for the formula (0 for Erlang C, exact; 3 % for Cosmetatos's approximation of M/D/c, whose
published error is within that over these loads), and each run is long enough that 4 standard errors are at most
15 % of the value (about 4 % at utilisation 0.5, 12-15 % at 0.9, where waits swing most), so a run cannot pass by
being noisy. Waits far below a job time (a lightly loaded large pool) are compared within 0.002 job times
instead, where a relative error means nothing. Run lengths keep the whole file to a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from handler.capacity import engine, theory
from handler.capacity.endpoint import Endpoint, Scaler, Timing
from handler.capacity.traffic import poisson

MEAN_JOB_S = 1.0
BATCHES = 20
SIGMAS = 4.0
MAX_NOISE = 0.15  # 4 standard errors, as a share of the theoretical value
ABSOLUTE_S = 0.002 * MEAN_JOB_S
# (workers, utilisation, requests simulated with exponential jobs, with fixed ones): a grid up to 0.9 utilisation;
# heavier loads and exponential jobs need longer runs for the same precision.
GRID = [
    (1, 0.5, 100_000, 100_000),
    (1, 0.9, 450_000, 150_000),
    (2, 0.7, 100_000, 100_000),
    (10, 0.5, 150_000, 60_000),
    (10, 0.8, 340_000, 100_000),
]


def fixed_pool_waits(workers: int, utilisation: float, requests: int, job_kind: str, seed: int) -> np.ndarray:
    rate_s = utilisation * workers / MEAN_JOB_S
    rng = np.random.default_rng(seed)
    traffic = poisson(rate_s * 60, requests / rate_s / 3600, rng)
    size = traffic.arrivals.size
    jobs = rng.exponential(MEAN_JOB_S, size) if job_kind == "exp" else np.full(size, MEAN_JOB_S)
    endpoint = Endpoint(workers, workers, 5.0, Scaler("queue-delay", 4.0), "ADA_24")
    tally = engine.run(traffic.arrivals, jobs, endpoint, Timing(cold_start_s=0.0), horizon_s=traffic.horizon_s)
    assert tally.cold_starts == 0 and tally.billed_flex_s == 0  # no scaling: the theory's system
    return tally.waits


def batch_mean(values: np.ndarray) -> tuple[float, float]:
    """The mean, and its standard error from the means of equal consecutive batches."""
    means = np.array([batch.mean() for batch in np.array_split(values, BATCHES)])
    return float(values.mean()), float(means.std(ddof=1) / math.sqrt(BATCHES))


def assert_agrees(simulated: np.ndarray, expected: float, formula_error: float) -> None:
    mean, error = batch_mean(simulated)
    if expected < ABSOLUTE_S * 10:
        assert abs(mean - expected) <= ABSOLUTE_S, (mean, expected)
        return
    assert SIGMAS * error <= MAX_NOISE * expected, f"too noisy to test: {SIGMAS} SE = {SIGMAS * error:.4f}"
    allowed = SIGMAS * error + formula_error * expected
    assert abs(mean - expected) <= allowed, f"simulated {mean:.4f}, theory {expected:.4f}, allowed {allowed:.4f}"


@pytest.mark.parametrize(("workers", "utilisation", "requests", "_"), GRID)
def test_exponential_jobs_match_erlang_c_mean_wait_and_tail(
    workers: int, utilisation: float, requests: int, _: int
) -> None:
    rate_s = utilisation * workers / MEAN_JOB_S
    waits = fixed_pool_waits(workers, utilisation, requests, "exp", seed=workers * 100 + int(utilisation * 10))
    assert_agrees(waits, theory.mmc_mean_wait(workers, rate_s, MEAN_JOB_S), formula_error=0.0)
    # P(W > t) at 0 (Erlang C itself) and at the mean wait of a request that waits (C/e).
    for t in (0.0, 1 / (workers / MEAN_JOB_S - rate_s)):
        assert_agrees((waits > t).astype(float), theory.mmc_wait_tail(workers, rate_s, MEAN_JOB_S, t), 0.0)


@pytest.mark.parametrize(("workers", "utilisation", "_", "requests"), GRID)
def test_fixed_jobs_match_cosmetatos_mean_wait(workers: int, utilisation: float, _: int, requests: int) -> None:
    rate_s = utilisation * workers / MEAN_JOB_S
    waits = fixed_pool_waits(workers, utilisation, requests, "fixed", seed=workers * 100 + int(utilisation * 10) + 1)
    assert_agrees(waits, theory.mdc_mean_wait(workers, rate_s, MEAN_JOB_S), formula_error=0.03)


def test_the_formulas_agree_with_their_closed_forms() -> None:
    """The functions the simulation is held to, against forms derived by hand: M/M/1 waits rho/(mu - lambda) and
    waits at all with probability rho; M/M/2 waits with probability 2 rho^2/(1 + rho); M/D/1 waits half M/M/1."""
    assert theory.erlang_c(1, 0.7, 1.0) == pytest.approx(0.7)
    assert theory.mmc_mean_wait(1, 0.7, 1.0) == pytest.approx(0.7 / 0.3)
    assert theory.erlang_c(2, 1.2, 1.0) == pytest.approx(2 * 0.6**2 / 1.6)
    assert theory.mdc_mean_wait(1, 0.7, 1.0) == pytest.approx(0.5 * 0.7 / 0.3)
    assert theory.mmc_wait_tail(1, 0.5, 1.0, 2.0) == pytest.approx(0.5 * math.exp(-1.0))
    with pytest.raises(ValueError, match="load < c"):
        theory.erlang_c(2, 2.5, 1.0)
