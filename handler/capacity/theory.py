"""Queueing theory the simulation must agree with where it applies: a fixed pool of c workers, no scaling, no cold
start, Poisson arrivals.

- M/M/c (exponential job times): Erlang C, exact. P(wait > 0) = C(c, a) with a = lambda / mu; the wait of a request
  that waits is exponential with rate c mu - lambda, so E[W] = C / (c mu - lambda) and
  P(W > t) = C e^-(c mu - lambda) t.
- M/D/c (fixed job times): Cosmetatos's approximation (1976) of the mean wait from M/M/c's,
  E[W] ~ 1/2 (1 + (1 - rho)(c - 1)(sqrt(4 + 5c) - 2) / (16 rho c)) E[W_M/M/c], exact for c = 1 (Pollaczek-Khinchine).
"""

from __future__ import annotations

import math


def _check(c: int, rate: float, mean_s: float) -> float:
    """The offered load a = rate * mean job time; refuses a load the c workers cannot carry."""
    load = rate * mean_s
    if c < 1 or load <= 0 or load >= c:
        raise ValueError(f"needs c >= 1 and 0 < load < c; got c = {c}, load = {load:g}")
    return load


def erlang_c(c: int, rate: float, mean_s: float) -> float:
    """P(a request waits) in M/M/c, by the Erlang B recursion (stable for any c)."""
    load = _check(c, rate, mean_s)
    blocked = 1.0  # Erlang B with 0 servers
    for k in range(1, c + 1):
        blocked = load * blocked / (k + load * blocked)
    rho = load / c
    return blocked / (1 - rho * (1 - blocked))


def mmc_mean_wait(c: int, rate: float, mean_s: float) -> float:
    return erlang_c(c, rate, mean_s) / (c / mean_s - rate)


def mmc_wait_tail(c: int, rate: float, mean_s: float, t: float) -> float:
    """P(W > t) in M/M/c."""
    return erlang_c(c, rate, mean_s) * math.exp(-(c / mean_s - rate) * t)


def mdc_mean_wait(c: int, rate: float, job_s: float) -> float:
    """Cosmetatos's approximation of the mean wait in M/D/c."""
    rho = rate * job_s / c
    correction = (1 - rho) * (c - 1) * (math.sqrt(4 + 5 * c) - 2) / (16 * rho * c)
    return 0.5 * (1 + correction) * mmc_mean_wait(c, rate, job_s)
