"""Progress updates for one RunPod job, from ComfyUI's ``progress`` events, at most one a second.

The SDK's ``runpod.serverless.progress_update`` posts ``{"status": "IN_PROGRESS", "output": progress}`` to the
job-done URL through ``rp_http.send_result`` from a fire-and-forget thread, so an update can reach RunPod after
the job's result (runpod-python #250: jobs stuck IN_PROGRESS). Here the same post (``send_result``, the same
body: ``tests/unit/test_runpod_progress.py`` pins both) runs on the worker's event loop, one at a time, and the
handler awaits ``close()`` before it returns: no update is sent after close, and the one in flight has been
answered (or its connection dropped) by then. The SDK posts the result only after the handler returned, so no
update can arrive after it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any

from handler.logs import JobLog

log = logging.getLogger(__name__)

# At most one update in this many seconds (a job's first one goes at once).
INTERVAL_S = 1.0
# How long close() waits for the update in flight before it drops its connection.
CLOSE_WAIT_S = 5.0


def progress_body(step: int, steps: int, node: str) -> dict[str, Any]:
    """What a client reads as the job's ``output`` while it is IN_PROGRESS."""
    percent = round(100 * step / steps) if steps > 0 else 0
    return {"status": "running", "step": step, "steps": steps, "percent": percent, "node": node}


class ProgressUpdates:
    """One job's updates. ``on_progress`` is called from the job's thread; ``close`` on the loop, before the
    handler returns its result."""

    def __init__(self, job: dict[str, Any], loop: asyncio.AbstractEventLoop, *, interval_s: float = INTERVAL_S) -> None:
        self.job, self.loop, self.interval_s = job, loop, interval_s
        self.jlog = JobLog(log, str(job.get("id") or "-"))
        self._lock = threading.Lock()
        self._closed = False
        self._last = float("-inf")
        self._in_flight: concurrent.futures.Future[None] | None = None
        self._session: Any = None
        self.sent = 0

    def on_progress(self, step: int, steps: int, node: str) -> None:
        """Start a post unless the last one was under ``interval_s`` ago, one is still in flight, or the job
        is over; skipped events are dropped (the next one carries newer news)."""
        now = time.monotonic()
        with self._lock:
            busy = self._in_flight is not None and not self._in_flight.done()
            if self._closed or busy or now - self._last < self.interval_s:
                return
            self._last = now
            body = progress_body(step, steps, node)
            self._in_flight = asyncio.run_coroutine_threadsafe(self._post(body), self.loop)

    async def _post(self, body: dict[str, Any]) -> None:
        from runpod.http_client import AsyncClientSession
        from runpod.serverless.modules.rp_http import send_result

        if self._session is None:
            self._session = AsyncClientSession()
        # What runpod.serverless.progress_update sends (rp_progress._async_progress_update), awaited here.
        await send_result(self._session, {"status": "IN_PROGRESS", "output": body}, self.job)
        self.sent += 1

    async def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """No update after this; the one in flight is answered, or cancelled (its connection closed)."""
        with self._lock:
            self._closed = True
            in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            try:
                await asyncio.wait_for(asyncio.wrap_future(in_flight), wait_s)
            except TimeoutError:
                self.jlog.warning("a progress update was not answered within %.0f s; dropped", wait_s)
            except Exception as exc:  # a failed update must not fail the job
                self.jlog.warning("a progress update failed: %s", exc)
        if self._session is not None:
            await self._session.close()
        self.jlog.debug("%d progress update(s) sent", self.sent)
