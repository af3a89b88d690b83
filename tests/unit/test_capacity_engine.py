"""The capacity planner's simulation on runs small enough to follow by hand: every figure asserted here is worked
out in the test from the model's stated rules (handler/capacity/engine.py's docstring), not read off a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handler.capacity import engine
from handler.capacity.endpoint import Endpoint, Scaler, Timing
from handler.capacity.result import Price, billed, summary

QUEUE_DELAY_4 = Scaler("queue-delay", 4.0)


def run(
    arrivals: list[float], jobs: list[float], endpoint: Endpoint, timing: Timing, horizon: float = 60.0
) -> engine.Tally:
    return engine.run(np.asarray(arrivals), np.asarray(jobs), endpoint, timing, horizon_s=horizon)


@pytest.mark.parametrize(("cold", "billed_s"), [(10.0, 18), (10.2, 19)])
def test_one_request_on_an_idle_endpoint_pays_the_cold_start_and_the_idle_timeout(cold: float, billed_s: int) -> None:
    # The request comes at 0.5 s; the scaler's next look is at 1 s, and with no worker up it starts one at once
    # (queue delay or not). It is ready at 1 + cold, runs 5 s, idles 3 s and stops: billed from 1 s, rounded up.
    tally = run([0.5], [5.0], Endpoint(0, 1, 3.0, QUEUE_DELAY_4, "ADA_24"), Timing(cold, look_s=1.0))
    assert tally.waits.tolist() == pytest.approx([0.5 + cold])
    assert (tally.cold_starts, tally.cold_jobs) == (1, 1)
    assert tally.billed_flex_s == billed_s == math.ceil(cold + 5 + 3)
    assert billed(tally, cold) == {
        "busy": 5.0,
        "idle": round(billed_s - 5 - cold, 1),
        "cold_start": cold,
        "total": billed_s,
    }


def test_queue_delay_starts_a_worker_once_a_request_has_waited_that_long() -> None:
    # An active worker takes the first request (0-10 s); the second, queued at 0.1 s, has waited 4 s at the look at
    # 4.1 s, but looks come at whole seconds, so the worker starts at 5 s and is ready at 7 s.
    tally = run([0.0, 0.1], [10.0, 10.0], Endpoint(1, 2, 30.0, QUEUE_DELAY_4, "ADA_24"), Timing(2.0, look_s=1.0))
    assert tally.waits.tolist() == pytest.approx([0.0, 6.9])
    assert tally.cold_starts == 1
    assert tally.busy_active_s == 10.0 and tally.busy_flex_s == 10.0


def test_request_count_keeps_one_worker_per_n_requests_queued_or_running() -> None:
    # Three requests at 0 s with request-count:2: ceil(3 / 2) = 2 workers, ready at 1 s; the third request waits
    # for the first job to end at 5 s. At later looks ceil((1 + 2) / 2) = 2 workers are up: nothing more starts.
    scaler = Scaler("request-count", 2.0)
    tally = run([0.0, 0.0, 0.0], [4.0] * 3, Endpoint(0, 5, 10.0, scaler, "ADA_24"), Timing(1.0, look_s=1.0))
    assert tally.waits.tolist() == pytest.approx([1.0, 1.0, 5.0])
    assert tally.cold_starts == 2 and tally.cold_jobs == 2


def test_starts_per_look_spreads_the_starts_over_looks() -> None:
    # request-count:1 wants three workers at once; one start a look starts them at 0, 1 and 2 s (cold 10 s).
    endpoint = Endpoint(0, 3, 10.0, Scaler("request-count", 1.0), "ADA_24")
    tally = run([0.0, 0.0, 0.0], [20.0] * 3, endpoint, Timing(10.0, look_s=1.0, starts_per_look=1))
    assert tally.waits.tolist() == pytest.approx([10.0, 11.0, 12.0])


def test_max_caps_the_workers_and_the_rest_queue() -> None:
    endpoint = Endpoint(0, 2, 10.0, Scaler("request-count", 1.0), "ADA_24")
    tally = run([0.0, 0.0, 0.0], [6.0] * 3, endpoint, Timing(3.0, look_s=1.0))
    assert tally.cold_starts == 2
    assert tally.waits.tolist() == pytest.approx([3.0, 3.0, 9.0])


def test_the_idle_worker_that_takes_a_request_is_the_one_idle_least_long() -> None:
    # Two workers (started at 0 s, no cold start) end their jobs at 10 s and 20 s. A request at 21 s, when both
    # are idle, goes to the second; the first times out at 10 + 12 = 22 s, the second ends at 26 s and stops at
    # 38 s: 22 + 38 billed seconds. Had the first taken it, 38 + 32.
    endpoint = Endpoint(0, 2, 12.0, Scaler("request-count", 1.0), "ADA_24")
    tally = run([0.0, 0.0, 21.0], [10.0, 20.0, 5.0], endpoint, Timing(0.0, look_s=1.0))
    assert tally.waits.tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert tally.billed_flex_s == 22 + 38


def test_active_workers_are_billed_all_the_time_at_their_price() -> None:
    tally = run([], [], Endpoint(2, 2, 5.0, QUEUE_DELAY_4, "ADA_24"), Timing(30.0), horizon=100.5)
    assert tally.billed_active_s == 2 * 101 and tally.billed_flex_s == 0
    result = summary(tally, 30.0, Price(flex_per_s=0.001, active_per_s=0.0005))
    assert result["cost_usd"]["total"] == pytest.approx(202 * 0.0005)
    assert result["workers"] == {"busy": 0.0, "idle": round(202 / 100.5, 3), "starting": 0.0, "utilisation": 0.0}


def test_the_timeline_samples_the_state_between_events() -> None:
    # One request at 0.5 s on an idle endpoint (cold 10 s, from the look at 1 s): queued until 11 s, busy to 16 s,
    # idle to 19 s, when the last event ends the run. (t, busy, idle, starting, queued) every 5 s:
    tally = engine.run(
        np.array([0.5]),
        np.array([5.0]),
        Endpoint(0, 1, 3.0, QUEUE_DELAY_4, "ADA_24"),
        Timing(10.0),
        horizon_s=20.0,
        sample_s=5.0,
    )
    assert tally.samples.tolist() == [
        [0.0, 0, 0, 0, 0],
        [5.0, 0, 0, 1, 1],
        [10.0, 0, 0, 1, 1],
        [15.0, 1, 0, 0, 0],
    ]
