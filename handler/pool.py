"""A few long-lived threads for a job's heavy steps (an input image's decode): at most ``size`` run at once in this
process, however many jobs wait, and a job waits for its call with its own deadline and cancel event.

A job that gives up (its deadline passed, it was cancelled) leaves at once. A call not started by then is dropped;
one that runs cannot be stopped (PIL's decoders have no cancel), so it runs to its end on its thread, which keeps
the bound true. The threads are the same ones every time, so that the memory a decode frees goes back to the
allocator arenas the next one takes it from, and they are daemons: a stopping process does not wait for them.
A call runs in a copy of its caller's context (``contextvars``): the job's id stays on what it logs.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from handler.deadline import Deadline
from handler.errors import JobCancelled, JobTimeout

T = TypeVar("T")
# How often a waiting job looks at its cancel event.
POLL_S = 0.1


class _Call(Generic[T]):
    value: T

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.context = contextvars.copy_context()
        self.done = threading.Event()
        self.abandoned = False
        self.error: BaseException | None = None

    def run(self) -> None:
        if self.abandoned:
            return
        try:
            self.value = self.context.run(self.fn)
        except BaseException as exc:  # handed to the waiting job
            self.error = exc
        finally:
            self.done.set()


class Pool:
    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self._calls: queue.SimpleQueue[_Call[Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def run(self, fn: Callable[[], T], deadline: Deadline, cancel: threading.Event | None, doing: str) -> T:
        """``fn()`` on one of the pool's threads, once one is free; ``doing`` says what it does, for the
        JobTimeout or JobCancelled raised when the job gives up on it."""
        self._start()
        call = _Call(fn)
        self._calls.put(call)
        while not call.done.is_set():
            if cancel is not None and cancel.is_set():
                call.abandoned = True
                raise JobCancelled(f"the job was cancelled while {doing}")
            if deadline.expired():
                call.abandoned = True
                raise JobTimeout(f"the deadline of {deadline.seconds:.0f} s passed while {doing}")
            call.done.wait(min(POLL_S, deadline.remaining()))
        if call.error is not None:
            raise call.error
        return call.value

    def _start(self) -> None:
        """The threads, started at the first call: importing the module starts none."""
        with self._lock:
            while len(self._threads) < self.size:
                thread = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            self._calls.get().run()
