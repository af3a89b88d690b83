"""handler/pool.py: at most ``size`` calls at once, a caller's deadline and cancel end its wait, a call given up
before it started never runs, one given up while it runs keeps its thread (the bound holds), errors and the
caller's context (its job id) cross to and from the pool's threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from handler import logs
from handler.deadline import Deadline
from handler.errors import InputError, JobCancelled, JobTimeout
from handler.pool import Pool


def in_threads(calls: list[Callable[[], object]]) -> list[object]:
    """Each call in a thread of its own, all at once; what each returned or raised."""
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_at_most_size_calls_run_at_once() -> None:
    pool, lock, running, peak = Pool(2, "test"), threading.Lock(), [0], [0]

    def work() -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)  # long enough for every caller to have queued its call
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    names = in_threads([lambda: pool.run(work, Deadline(30), None, "working")] * 6)
    assert peak[0] == 2 and set(names) == {"test-0", "test-1"}  # the same two threads served all six


def test_a_call_given_up_before_it_started_never_runs() -> None:
    pool, release, ran = Pool(1, "test"), threading.Event(), []
    busy = threading.Thread(target=lambda: pool.run(lambda: release.wait(30), Deadline(30), None, "holding"))
    busy.start()
    with pytest.raises(JobTimeout) as caught:
        pool.run(lambda: ran.append("late"), Deadline(0.2), None, "'background' was decoded")
    assert caught.value.message == "the deadline of 0 s passed while 'background' was decoded"
    release.set()
    busy.join(30)
    assert pool.run(lambda: "next", Deadline(30), None, "next") == "next"  # served after the dropped one
    assert ran == []


def test_a_call_given_up_while_it_runs_keeps_its_thread() -> None:
    pool, release, order = Pool(1, "test"), threading.Event(), []

    def slow() -> None:
        release.wait(30)
        order.append("slow ended")

    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(JobCancelled) as caught:
        pool.run(slow, Deadline(30), cancel, "decoding")
    assert caught.value.message == "the job was cancelled while decoding"
    threading.Timer(0.2, release.set).start()
    pool.run(lambda: order.append("next ran"), Deadline(30), None, "next")
    assert order == ["slow ended", "next ran"]  # never two at once, though the first caller had left


def test_an_error_reaches_the_caller_and_the_context_reaches_the_call() -> None:
    pool = Pool(1, "test")

    def refuse() -> None:
        raise InputError("'background' is truncated or corrupt", field="background")

    with pytest.raises(InputError, match="truncated"):
        pool.run(refuse, Deadline(30), None, "decoding")
    with logs.job_context("job-42"):
        seen = pool.run(logs.current_job_id, Deadline(30), None, "reading")
    assert seen == "job-42"
