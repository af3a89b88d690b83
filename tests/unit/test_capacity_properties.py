"""Properties the capacity planner's simulation must have whatever the settings, checked with hypothesis over
endpoints, traffic and job times (``derandomize``: the same examples on every run, so CI is repeatable).

One property needs a boundary, found by these tests and kept as a test of its own: more ``max`` workers never
raise a request's wait while no worker stops, but once idle timeouts stop workers a larger ``max`` can raise a
short run's p95 (workers that cleared a backlog sooner also went idle sooner and stopped sooner, so the next burst
finds fewer of them). Over a long run the p95 falls with ``max`` again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.capacity import engine
from handler.capacity.__main__ import main
from handler.capacity.endpoint import Endpoint, Scaler, Timing
from handler.capacity.jobtime import JobTime
from handler.capacity.result import Price, cost, spread
from handler.capacity.traffic import poisson

EXAMPLES = settings(max_examples=100, deadline=None, derandomize=True, database=None)
NEVER_S = 1e9  # an idle timeout no run reaches: no worker ever stops


@dataclass(frozen=True)
class Case:
    arrivals: np.ndarray
    jobs: np.ndarray
    horizon_s: float
    endpoint: Endpoint
    timing: Timing

    def run(self, **change: float | int) -> engine.Tally:
        fields = self.endpoint.__dict__ | change
        return engine.run(self.arrivals, self.jobs, Endpoint(**fields), self.timing, horizon_s=self.horizon_s)


scalers = st.one_of(
    st.sampled_from([1.0, 2.0, 4.0, 8.0]).map(lambda s: Scaler("queue-delay", s)),
    st.integers(1, 4).map(lambda n: Scaler("request-count", float(n))),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Up to an hour of Poisson traffic at up to 60 requests a minute, lognormal job times, any scaler."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    traffic = poisson(draw(st.floats(1.0, 60.0)), draw(st.floats(0.05, 1.0)), rng)
    p50 = draw(st.floats(0.5, 20.0))
    jobs = JobTime("lognormal", (p50, p50 * draw(st.floats(1.0, 3.0))), "").draw(rng, traffic.arrivals.size)
    active = draw(st.integers(0, 3))
    endpoint = Endpoint(
        active, draw(st.integers(max(active, 1), active + 6)), draw(st.floats(0.0, 300.0)), draw(scalers), "ADA_24"
    )
    timing = Timing(
        draw(st.sampled_from([0.0, 5.0, 30.0, 60.0])), draw(st.sampled_from([0.5, 1.0, 2.0])), draw(st.integers(0, 2))
    )
    return Case(traffic.arrivals, jobs, traffic.horizon_s, endpoint, timing)


def p95(tally: engine.Tally) -> float:
    return spread(tally.waits + tally.job_s)["p95"]


@EXAMPLES
@given(cases(), st.integers(1, 4))
def test_more_max_workers_never_raise_a_wait_or_the_p95_while_no_worker_stops(case: Case, more: int) -> None:
    fewer = case.run(idle_timeout_s=NEVER_S)
    wider = case.run(idle_timeout_s=NEVER_S, max=case.endpoint.max + more)
    assert np.all(wider.waits <= fewer.waits + 1e-9)
    assert p95(wider) <= p95(fewer)


@EXAMPLES
@given(cases(), st.integers(1, 4))
def test_a_larger_fixed_pool_never_raises_a_wait(case: Case, more: int) -> None:
    size = case.endpoint.max
    small, large = case.run(active=size), case.run(active=size + more, max=size + more)
    assert np.all(large.waits <= small.waits + 1e-9)


def test_with_idle_timeouts_a_larger_max_can_raise_a_short_runs_p95_but_not_a_long_ones() -> None:
    """The boundary of the property above, pinned on an example the search found: 21 minutes of traffic where
    max 6 does worse than max 5, and the same endpoint over 12 hours, where more workers do better."""

    def p95s(hours: float, seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        traffic = poisson(20.6, hours, rng)
        jobs = JobTime("lognormal", (10.0, 15.0), "").draw(rng, traffic.arrivals.size)
        found = []
        for workers in (5, 6, 7):
            endpoint = Endpoint(2, workers, 49.0, Scaler("request-count", 2.0), "ADA_24")
            found.append(p95(engine.run(traffic.arrivals, jobs, endpoint, Timing(0.0), horizon_s=traffic.horizon_s)))
        return found

    short = p95s(0.35, seed=153)
    assert short[1] > short[0] * 1.05  # 18.7 s at max 5, 20.1 s at max 6
    long = p95s(12.0, seed=153)
    assert long[0] > long[1] > long[2]


@EXAMPLES
@given(cases(), st.floats(1.0, 600.0))
def test_a_longer_idle_timeout_never_raises_the_cold_starts(case: Case, longer: float) -> None:
    short = case.run()
    long = case.run(idle_timeout_s=case.endpoint.idle_timeout_s + longer)
    assert long.cold_starts <= short.cold_starts


@EXAMPLES
@given(cases(), st.floats(0.0, 0.01), st.floats(0.0, 0.01))
def test_cost_is_never_below_busy_time_at_its_price(case: Case, flex: float, active: float) -> None:
    tally = case.run()
    price = Price(flex, active)
    assert cost(tally, price) >= tally.busy_flex_s * flex + tally.busy_active_s * active - 1e-9
    # Billed seconds cover the busy ones and every cold start, kind by kind.
    assert tally.billed_flex_s >= tally.busy_flex_s + tally.cold_starts * case.timing.cold_start_s - 1e-6
    assert tally.billed_active_s >= tally.busy_active_s - 1e-6


def simulate_json(capsys: pytest.CaptureFixture[str], seed: int) -> dict[str, object]:
    args = [
        "simulate",
        "--rate-per-min",
        "20",
        "--hours",
        "2",
        "--job-time",
        "lognormal:4,9",
        "--max",
        "4",
        "--cold-start-s",
        "20",
        "--seed",
        str(seed),
        "--json",
    ]
    assert main(args) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_the_same_seed_gives_the_same_result_and_another_seed_another(
    capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    first, again, other = simulate_json(capsys, seed), simulate_json(capsys, seed), simulate_json(capsys, seed + 1)
    assert first == again
    assert other["latency_s"] != first["latency_s"] and other["jobs"] != first["jobs"]
