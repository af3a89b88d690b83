"""A stand-in for a hostile endpoint, for the acceptance run's tests: a raw asyncio server on loopback that records
every request and answers it from a script the test chose, byte for byte.

An endpoint that misbehaves on purpose cannot be reached from where the tests run (no real one does it on
demand), and aiohttp, a correct server, cannot send what these tests need it to: a malformed status line, a body
shorter than its ``Content-Length``, bytes trickled one at a time. So the answers are written to the socket here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.helpers import free_port

Script = list[bytes | float]  # bytes are written as they are; a float is a pause, in seconds; then it closes


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answerer = Callable[[Seen], Script]


def response(status: int = 200, body: bytes = b"", *, headers: dict[str, str] | None = None) -> bytes:
    """A well-formed HTTP/1.1 response (the test spoils it as it likes)."""
    lines = [f"HTTP/1.1 {status} Status", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_response(value: Any, status: int = 200) -> Script:
    return [response(status, json.dumps(value).encode(), headers={"Content-Type": "application/json"})]


class Hostile:
    """The stand-in: see the module docstring. ``answer`` is called with each request; ``seen`` keeps them all."""

    def __init__(self, answer: Answerer) -> None:
        self.answer = answer
        self.seen: list[Seen] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hostile-endpoint", daemon=True)
        self.server: asyncio.Server | None = None

    def __enter__(self) -> Hostile:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, path, headers, body)
            self.seen.append(seen)
            for part in self.answer(seen):
                if isinstance(part, float):
                    await asyncio.sleep(part)
                else:
                    writer.write(part)
                    await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()
