"""Running the blocking core from an event loop (the alpha API, the async RunPod handler)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[[], T], name: str = "alpha-job") -> T:
    """Run a blocking call in a daemon thread and await it. Unlike the default executor, a stopping process
    never waits for it, and a cancelled awaiter returns at once; the thread is told through whatever
    cancel event ``fn`` watches (see ``Generator.generate(cancel=...)``). ``fn`` runs in a copy of the caller's
    context: the job id of ``handler.logs.job_context`` goes along."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        try:
            result: Any = (True, context.run(fn))
        except BaseException as exc:  # handed to the awaiting coroutine
            result = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
            loop.call_soon_threadsafe(settle, *result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
