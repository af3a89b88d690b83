"""The RunPod door: a thin adapter from a RunPod job to ``Generator.generate``.

``AlphaError`` becomes a response here and nowhere else. RunPod marks a job as
failed when the output dict carries ``error``; the rest of the dict
(``status``, ``code``, ``message``, ``field``) stays in the job's output.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from handler import logs, readiness
from handler.comfyui.process import wait_for_comfyui
from handler.doors.runpod.payload import success_output
from handler.doors.threads import in_thread
from handler.errors import AlphaError, error_body
from handler.generate import Generator
from handler.logs import JobLog
from handler.request import Request
from handler.settings import load_or_exit

log = logging.getLogger(__name__)


def error_output(exc: AlphaError) -> dict[str, Any]:
    output = error_body(exc)
    if exc.refresh_worker:
        output["refresh_worker"] = True
    return output


def handle_job(generator: Generator, job: dict[str, Any], cancel: threading.Event | None = None) -> dict[str, Any]:
    job_id = str(job.get("id") or "-")
    jlog = JobLog(log, job_id)
    try:
        result = generator.generate(Request.parse(job.get("input")), job_id=job_id, cancel=cancel)
        return success_output(result, generator.settings, job_id)
    except AlphaError as exc:
        jlog.warning("job failed: %s", exc)
        return error_output(exc)
    except Exception:
        jlog.exception("job failed with an unexpected error")
        return error_output(AlphaError("unexpected internal error; the worker log has the details"))


def make_handler(generator: Generator) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """An async handler: RunPod stops a job (its stop signal, a cancelled request) by cancelling the handler's
    task, which only reaches async code. The job runs in a thread this handler owns; on cancellation the
    thread is told, interrupts and dequeues the job's prompt, and ends."""

    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        cancel = threading.Event()
        try:
            return await in_thread(lambda: handle_job(generator, job, cancel), name=f"job-{job.get('id')}")
        except asyncio.CancelledError:
            JobLog(log, str(job.get("id") or "-")).warning("job cancelled by RunPod; stopping its prompt")
            cancel.set()
            raise

    return handler


def main() -> int:
    settings = load_or_exit()
    logs.configure(settings.log_level)
    try:
        generator = Generator(settings)
        wait_for_comfyui(generator.client, settings.ready_timeout_s)
        # Refuse to take jobs with a workflow this ComfyUI cannot run, rather than fail the first job.
        readiness.require(generator.workflows, generator.client)
    except AlphaError as exc:
        log.error("worker not started: %s", exc)
        return 1
    # Imported late: the SDK parses sys.argv (--test_input, --rp_serve_api) and logs on import.
    import runpod
    from runpod.serverless.modules.rp_logger import RunPodLogger

    RunPodLogger().set_level(settings.runpod_log_level)

    log.info("RunPod worker starting (workflow %s, sha256 %s)", generator.workflow.name, generator.workflow.sha256[:12])
    runpod.serverless.start({"handler": make_handler(generator)})
    return 0
