"""aiohttp's own answers, in the contract's error shape. A request its HTTP parser refuses (a bad request line, a
bad or duplicate header, a bad chunk) never reaches the app or its middlewares: aiohttp answers it from its
connection handler (``RequestHandler.handle_error``) as plain text, and offers no hook for it (aiohttp issue
#3287). ``AlphaRunner`` serves the app with a connection handler whose ``handle_error`` answers as every other
error does, with ``{"status": "error", "code", "message", ...}``; ``main`` and the tests both serve through it.

It logs a refusal in one line without the request's bytes (aiohttp's own log line quotes them, an
``Authorization`` header included), and an unexpected exception with its traceback, as aiohttp does.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from handler.errors import AlphaError, BadRequest, JobTimeout, error_body

log = logging.getLogger(__name__)
SHOWN_CHARS = 200


def reason(message: str) -> str:
    """aiohttp's parser message without the request's bytes it quotes: its first line, up to the quote."""
    first = message.strip().split("\n", 1)[0]
    return first.split(": b'", 1)[0].split(': b"', 1)[0].rstrip(":")[:SHOWN_CHARS]


class ContractHandler(RequestHandler):
    """aiohttp's connection handler, but for its error answers (layout-compatible: no state of its own)."""

    __slots__ = ()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: the answer has started; only the connection can go
            raise ConnectionError("the response was being sent already; cannot send an error instead")
        error: AlphaError
        if status == 400:
            why = reason(message or str(exc or "")) or "not a valid HTTP request"
            log.warning("refused a malformed HTTP request from %s: %s", request.remote, why)
            error = BadRequest(f"the HTTP request is malformed: {why}")
        elif status == 504:
            log.warning("a request from %s did not finish in time", request.remote)
            error = JobTimeout("the request did not finish in time")
        else:
            log.error("unexpected error handling a request from %s", request.remote, exc_info=exc)
            error = AlphaError("unexpected internal error; the server log has the details")
        response = web.json_response(error_body(error), status=status, headers={"X-Content-Type-Options": "nosniff"})
        response.force_close()
        return response


class ContractServer(web.Server):
    """aiohttp's server, making ``ContractHandler`` connections (layout-compatible: no state of its own)."""

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = ContractHandler
        return handler


class AlphaRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer aiohttp's own refusals in the contract's shape."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        # A client that disconnects cancels its handler (and its job).
        super().__init__(app, handler_cancellation=True, **kwargs)

    async def setup(self) -> None:
        await super().setup()
        assert self.server is not None
        self.server.__class__ = ContractServer
