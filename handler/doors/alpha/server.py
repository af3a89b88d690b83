"""The local alpha API door (aiohttp): ``python -m handler.doors.alpha.server``, or ``./bootstrap.sh serve``.

A thin adapter over ``Generator.generate``, like the RunPod door. ``AlphaError`` becomes an HTTP response
in one place (``error_response``), with the RunPod path's body shape and the error class's own status.
Jobs run in daemon threads (the client blocks), so the event loop keeps answering while ComfyUI works
through its serial queue; a process that is told to stop does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from handler import logs, readiness
from handler.deadline import Deadline
from handler.doors.alpha import openapi
from handler.doors.alpha.guard import allowed_hosts, browser_guard, require_json
from handler.doors.alpha.openapi import PREFIX
from handler.doors.alpha.protocol import AlphaRunner
from handler.doors.alpha.store import ImageStore, content_type
from handler.doors.threads import in_thread
from handler.errors import (
    AlphaError,
    BodyTooLarge,
    InputError,
    JobCancelled,
    JobTimeout,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    error_body,
)
from handler.generate import Generator
from handler.logs import JobLog
from handler.request import Request
from handler.settings import load_or_exit

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Jobs waiting for or running in ComfyUI at once; more wait here, on their own deadline.
MAX_JOBS_IN_FLIGHT = 16
HEALTH_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 5.0
IMMUTABLE = "private, max-age=31536000, immutable"

GENERATOR = web.AppKey("generator", Generator)
STORE = web.AppKey("store", ImageStore)
SLOTS = web.AppKey("slots", asyncio.Semaphore)


def error_response(exc: AlphaError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(exc), status=exc.status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Our errors, and aiohttp's own refusals (no route, wrong method), in our error shape."""
    try:
        return await handler(request)
    except AlphaError as exc:
        return error_response(exc)
    except web.HTTPNotFound:
        return error_response(NotFound("not found"))
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            MethodNotAllowed(f"{request.method} is not allowed here"), {"Allow": ", ".join(sorted(exc.allowed_methods))}
        )


def auth_middleware(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return error_response(
                Unauthorized("a valid 'Authorization: Bearer <token>' header is required"),
                {"WWW-Authenticate": 'Bearer realm="alpha"'},
            )
        return await handler(request)

    return check_token


async def txt2img(request: web.Request) -> web.Response:
    deadline = Deadline(request.app[GENERATOR].settings.job_timeout_s)  # the queue wait counts too
    job_id = uuid.uuid4().hex[:12]
    jlog = JobLog(log, job_id)
    with logs.job_context(job_id):  # this request's task, and the threads it starts (in_thread copies it)
        return await _txt2img(request, job_id, jlog, deadline)


async def _txt2img(request: web.Request, job_id: str, jlog: JobLog, deadline: Deadline) -> web.Response:
    try:
        data = await _json_body(request)
        # An input image is checked here, from its header (its pixels are decoded in the job, once it holds a
        # slot): off the event loop, which serves other requests meanwhile.
        job = await in_thread(lambda: Request.parse(data), name="alpha-parse")
        if job.delivery is not None:
            raise InputError(
                "'delivery' does not apply to the alpha API: it answers with the file's URL; omit it", field="delivery"
            )
        generator, store = request.app[GENERATOR], request.app[STORE]
        try:
            async with asyncio.timeout(deadline.remaining()):
                await request.app[SLOTS].acquire()
        except TimeoutError:
            raise JobTimeout(f"no free job slot within the deadline of {deadline.seconds:.0f} s") from None
        cancel = threading.Event()
        try:

            def run() -> dict[str, Any]:
                result = generator.generate(job, job_id=job_id, deadline=deadline, cancel=cancel)
                if cancel.is_set():
                    raise JobCancelled("the client went away")
                stored = {name: store.save(layer.filename, layer.image) for name, layer in result.layers.items()}
                store.save(result.filename, result.image)
                body = {"url": f"{PREFIX}/file/{result.filename}", "filename": result.filename, "info": result.info}
                if stored:
                    body["layers"] = {
                        name: {"url": f"{PREFIX}/file/{path.name}", "filename": path.name}
                        for name, path in stored.items()
                    }
                return body

            return web.json_response(await in_thread(run), headers={"X-Request-Id": job_id})
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client disconnects (AlphaRunner): stop the prompt too.
            jlog.warning("the client went away; stopping its prompt")
            cancel.set()
            raise
        finally:
            request.app[SLOTS].release()
    except AlphaError as exc:
        jlog.warning("request failed: %s", exc)
        return error_response(exc, {"X-Request-Id": job_id})
    except Exception:
        jlog.exception("request failed with an unexpected error")
        return error_response(
            AlphaError("unexpected internal error; the server log has the details"), {"X-Request-Id": job_id}
        )


async def _json_body(request: web.Request) -> Any:
    require_json(request)
    limit = request.app[GENERATOR].settings.serve_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is {request.content_length} bytes; the limit is {limit}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes") from None
    try:
        return json.loads(raw)
    except RecursionError:
        raise InputError("the body nests arrays or objects too deeply to be a job input") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError("the body must be a JSON object (Content-Type: application/json)") from None


async def file(request: web.Request) -> web.Response:
    name = request.match_info["filename"]
    data = await asyncio.to_thread(request.app[STORE].read, name)
    if data is None:
        raise NotFound("not found")
    return web.Response(
        body=data,
        content_type=content_type(name),
        headers={"Cache-Control": IMMUTABLE, "Content-Security-Policy": "default-src 'none'"},
    )


async def health(request: web.Request) -> web.Response:
    generator = request.app[GENERATOR]
    result = await in_thread(
        lambda: readiness.check(generator.workflows, generator.client, HEALTH_TIMEOUT_S, generator.modes.workflows)
    )
    body = {"status": "ready" if result.ready else "not_ready", "problems": result.problems, "checks": result.checks}
    return web.json_response(body, status=200 if result.ready else 503)


async def openapi_document(request: web.Request) -> web.Response:
    generator = request.app[GENERATOR]
    return web.json_response(
        openapi.document(
            token_required=generator.settings.serve_token is not None,
            sizes=generator.sizes(),
            workflows=list(generator.allowed),
        )
    )


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def create_app(generator: Generator) -> web.Application:
    settings = generator.settings
    guard = browser_guard(allowed_hosts(settings.serve_host, settings.serve_allowed_hosts))
    middlewares: list[Any] = [headers_middleware, errors_middleware, guard]
    if settings.serve_token:
        middlewares.append(auth_middleware(settings.serve_token))
    # client_max_size bounds what aiohttp will buffer even without a Content-Length (chunked bodies).
    app = web.Application(middlewares=middlewares, client_max_size=settings.serve_max_body_bytes)
    app[GENERATOR] = generator
    app[STORE] = ImageStore(
        settings.effective_serve_dir, max_files=settings.serve_max_files, max_age_s=settings.serve_max_age_days * 86400
    )
    app[SLOTS] = asyncio.Semaphore(MAX_JOBS_IN_FLIGHT)
    app.router.add_post(f"{PREFIX}/txt2img", txt2img)
    app.router.add_get(f"{PREFIX}/file/{{filename}}", file)  # GET also answers HEAD
    app.router.add_get(f"{PREFIX}/health", health, allow_head=False)
    app.router.add_get(f"{PREFIX}/openapi.json", openapi_document, allow_head=False)
    return app


async def serve(app: web.Application, host: str, port: int, access_log: logging.Logger) -> None:
    """Serve until SIGINT or SIGTERM, then close: requests in flight get SHUTDOWN_TIMEOUT_S to answer (a job whose
    ComfyUI died answers comfyui_unavailable). The signals only set an event: raising GracefulExit out of the loop,
    as aiohttp's handle_signals does, would let asyncio.run cancel the handlers before they answer."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = AlphaRunner(app, handle_signals=False, access_log=access_log, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    settings = load_or_exit()
    logs.configure(settings.log_level)
    try:
        generator = Generator(settings)
    except AlphaError as exc:
        log.error("alpha API not started: %s", exc)
        return 1
    if not settings.serve_is_loopback:
        log.warning(
            "the alpha API binds %s, so other hosts can reach it%s",
            settings.serve_host,
            "" if settings.serve_token else "; no ALPHA_SERVE_TOKEN is set, so anyone who can connect can run jobs",
        )
    log.info(
        "alpha API on http://%s:%d%s/ (workflow %s, files in %s)",
        settings.serve_host,
        settings.serve_port,
        PREFIX,
        generator.workflow.name,
        settings.effective_serve_dir,
    )
    access_log = logging.getLogger(f"{__name__}.access")
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):  # SIGTERM, SIGINT: a graceful stop
        asyncio.run(serve(create_app(generator), settings.serve_host, settings.serve_port, access_log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
