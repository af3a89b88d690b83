"""The second chance on flat alpha (handler/attempts.py), driven by an attempt function that fails as told: seeded
requests never retry, every attempt shares the job's one deadline, and each rejection is recorded with its seed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from handler import attempts
from handler.attempts import Attempt
from handler.deadline import Deadline
from handler.errors import JobTimeout, TransparencyError
from handler.logs import JobLog

JLOG = JobLog(logging.getLogger("test"), "job-1")
FLAT = "the output's alpha is 100% opaque: 4096 of 4096 pixels"


def script(outcomes: list[str], seen: list[int]) -> Callable[[int], str]:
    """An attempt that records its seed, then fails the check ("flat"), times out ("late") or passes."""

    def attempt(seed: int) -> str:
        seen.append(seed)
        outcome = outcomes[len(seen) - 1]
        if outcome == "flat":
            raise TransparencyError(f"{FLAT} (seed {seed})")
        if outcome == "late":
            raise JobTimeout("the deadline passed")
        return f"image of {seed}"

    return attempt


def seeds(start: int) -> Callable[[list[Attempt]], int]:
    return lambda tried: start + len(tried)


def test_a_flat_result_is_retried_with_a_new_seed_and_both_are_reported() -> None:
    seen: list[int] = []
    result, tried = attempts.run(
        script(["flat", "ok"], seen), seed=None, retries=1, deadline=Deadline(60), jlog=JLOG, draw=seeds(100)
    )
    assert (result, seen) == ("image of 101", [100, 101])
    assert [a.as_dict() for a in tried] == [
        {"seed": 100, "rejected": f"{FLAT} (seed 100)"},
        {"seed": 101, "rejected": None},
    ]


def test_a_seeded_request_is_never_retried_and_keeps_its_message() -> None:
    seen: list[int] = []
    with pytest.raises(TransparencyError) as caught:
        attempts.run(script(["flat", "ok"], seen), seed=7, retries=3, deadline=Deadline(60), jlog=JLOG)
    assert seen == [7]
    assert caught.value.message == f"{FLAT} (seed 7)", "one attempt: the check's own message"


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_the_retries_run_out_and_the_error_names_every_attempt(retries: int) -> None:
    seen: list[int] = []
    with pytest.raises(TransparencyError) as caught:
        attempts.run(
            script(["flat"] * 4, seen), seed=None, retries=retries, deadline=Deadline(60), jlog=JLOG, draw=seeds(5)
        )
    assert seen == list(range(5, 5 + retries + 1))
    message = caught.value.message
    if retries == 0:
        assert message == f"{FLAT} (seed 5)"
        return
    assert message.startswith(f"every attempt failed the transparency check ({retries + 1} seeds): ")
    for n, seed in enumerate(seen, 1):
        assert f"attempt {n} (seed {seed}): {FLAT} (seed {seed})" in message


def test_no_retry_starts_once_the_deadline_has_passed() -> None:
    """The job's one deadline covers every attempt: an expired one ends the job with what was tried."""
    seen: list[int] = []
    with pytest.raises(TransparencyError) as caught:
        attempts.run(script(["flat", "ok"], seen), seed=None, retries=3, deadline=Deadline(0), jlog=JLOG)
    assert len(seen) == 1
    assert caught.value.message.endswith("; the deadline left no time for another attempt")
    assert f"attempt 1 (seed {seen[0]})" in caught.value.message


def test_no_retry_starts_that_the_deadline_would_cut_off() -> None:
    """An attempt took 0.2 s and 0.1 s are left: another would end in a timeout, so the job ends now, naming
    the seed it tried, rather than as ``timeout`` after wasting the rest."""
    seen: list[int] = []
    slow = script(["flat", "ok"], seen)

    def attempt(seed: int) -> str:
        time.sleep(0.2)
        return slow(seed)

    with pytest.raises(TransparencyError) as caught:
        attempts.run(attempt, seed=None, retries=1, deadline=Deadline(0.3), jlog=JLOG)
    assert len(seen) == 1 and "no time for another attempt" in caught.value.message
    seen.clear()
    result, tried = attempts.run(attempt, seed=None, retries=1, deadline=Deadline(5), jlog=JLOG)
    assert len(tried) == 2 and result == f"image of {seen[1]}", "with time left, the retry runs"


def test_other_errors_end_the_job_as_they_are() -> None:
    seen: list[int] = []
    with pytest.raises(JobTimeout):
        attempts.run(script(["flat", "late", "ok"], seen), seed=None, retries=3, deadline=Deadline(60), jlog=JLOG)
    assert len(seen) == 2, "a timeout in the retry is not retried"


def test_new_seeds_are_random_and_never_repeat_within_a_job() -> None:
    tried = [Attempt(s) for s in range(3)]
    drawn = {attempts.new_seed(tried) for _ in range(50)}
    assert len(drawn) > 45 and not drawn & {0, 1, 2}
    assert all(0 <= seed <= 2**53 - 1 for seed in drawn)
