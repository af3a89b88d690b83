"""The RunPod door: a thin adapter from a RunPod job to ``Generator.generate``.

``AlphaError`` becomes a response here and nowhere else. RunPod marks a job as
failed when the output dict carries ``error``; the rest of the dict
(``status``, ``code``, ``message``, ``field``) stays in the job's output.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from handler import logs, readiness, startgate
from handler.comfyui.client import ProgressCallback
from handler.comfyui.process import wait_for_comfyui
from handler.deadline import Deadline
from handler.doors.runpod.drain import Drain, InFlight, JobCancel, sdk_jobs_held
from handler.doors.runpod.payload import check_delivery, success_output
from handler.doors.runpod.progress import ProgressUpdates
from handler.doors.threads import in_thread
from handler.errors import AlphaError, JobCancelled, error_body
from handler.generate import Generator
from handler.logs import JobLog
from handler.request import Request
from handler.settings import Settings, load_or_exit

log = logging.getLogger(__name__)


def error_output(exc: AlphaError) -> dict[str, Any]:
    output = error_body(exc)
    if exc.refresh_worker:
        output["refresh_worker"] = True
    return output


def handle_job(
    generator: Generator,
    job: dict[str, Any],
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    job_id = str(job.get("id") or "-")
    jlog = JobLog(log, job_id)
    deadline = Deadline(generator.settings.job_timeout_s)  # from the job's start: its input's parse counts
    try:
        with logs.job_context(job_id):
            request = Request.parse(job.get("input"))
            check_delivery(request.delivery, generator.settings)
            result = generator.generate(
                request, job_id=job_id, cancel=cancel, on_progress=on_progress, deadline=deadline
            )
            return success_output(result, generator.settings, job_id, request.delivery)
    except AlphaError as exc:
        if isinstance(exc, JobCancelled) and isinstance(cancel, JobCancel) and cancel.reason:
            exc = JobCancelled(cancel.reason)  # the worker stopped it, not RunPod: say why
        jlog.warning("job failed: %s", exc)
        return error_output(exc)
    except Exception:
        jlog.exception("job failed with an unexpected error")
        return error_output(AlphaError("unexpected internal error; the worker log has the details"))


def make_handler(
    generator: Generator, *, in_flight: InFlight | None = None, progress: bool = False
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """An async handler: RunPod stops a job (its stop signal, a cancelled request) by cancelling the handler's
    task, which only reaches async code. The job runs in a thread this handler owns; on cancellation the
    thread is told, interrupts and dequeues the job's prompt, and ends. ``in_flight`` lets the drain cancel
    it; with ``progress``, ComfyUI's progress events go to RunPod, all of them before the handler returns."""
    jobs = in_flight if in_flight is not None else InFlight()

    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        job_id = str(job.get("id") or "-")
        cancel = JobCancel()
        updates = ProgressUpdates(job, asyncio.get_running_loop()) if progress else None
        on_progress = updates.on_progress if updates is not None else None
        try:
            with jobs.track(job_id, cancel):
                return await in_thread(lambda: handle_job(generator, job, cancel, on_progress), name=f"job-{job_id}")
        except asyncio.CancelledError:
            JobLog(log, job_id).warning("job cancelled by RunPod; stopping its prompt")
            cancel.set()
            raise
        finally:
            if updates is not None:
                await updates.close()  # before the result: no update may reach RunPod after it

    return handler


def sdk_runs_production(argv: list[str]) -> bool:
    """Whether the SDK will run its production loop (job-take, job-done) rather than a local tool."""
    from runpod.serverless.modules.worker_state import IS_LOCAL_TEST

    return not IS_LOCAL_TEST and not {"--test_input", "--rp_serve_api"} & {a.split("=")[0] for a in argv}


# How long a gated worker waits beyond the supervisor's own bounds (ComfyUI ready, readiness, warm-up) before it
# gives up: the supervisor opens the gate or stops the worker well within them.
GATE_MARGIN_S = 60.0


def gate_timeout_s(settings: Settings) -> float:
    return settings.ready_timeout_s + readiness.STARTUP_TIMEOUT_S + settings.warmup_timeout_s + GATE_MARGIN_S


def main(*, gated: bool = False) -> int:
    """The RunPod worker. Alone (``python -m handler``) it checks ComfyUI itself; ``gated``
    (``python -m handler.doors.runpod``, started early by the supervisor, which runs those checks and the warm-up)
    it loads everything, then takes jobs only once the supervisor opens its start gate."""
    started = time.monotonic()
    settings = load_or_exit()
    logs.configure(settings.log_level)
    try:
        generator = Generator(settings)
        if not gated:
            wait_for_comfyui(generator.client, settings.ready_timeout_s)
            # Refuse to take jobs with a workflow this ComfyUI cannot run, rather than fail the first job.
            readiness.require(generator.workflows, generator.client)
    except AlphaError as exc:
        log.error("worker not started: %s", exc)
        return 1
    # Imported late: the SDK parses sys.argv (--test_input, --rp_serve_api) and logs on import.
    import runpod
    from runpod.serverless.modules.rp_logger import RunPodLogger

    from handler.doors.runpod import jobloop

    RunPodLogger().set_level(settings.runpod_log_level)
    production = sdk_runs_production(sys.argv[1:])
    try:
        if production:  # only the production loop is adapted; the local tools are the SDK's own
            jobloop.check_sdk(runpod.__version__, settings)
    except AlphaError as exc:
        log.error("cannot start: %s", exc)
        return 1

    in_flight = InFlight()
    handler = make_handler(generator, in_flight=in_flight, progress=production)
    start = prepare(handler, in_flight, settings, production=production)
    if gated and not wait_at_the_gate(settings, started):
        return 1
    log.info("RunPod worker starting (workflow %s, sha256 %s)", generator.workflow.name, generator.workflow.sha256[:12])
    start()
    return 0


def prepare(
    handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    in_flight: InFlight,
    settings: Settings,
    *,
    production: bool,
) -> Callable[[], None]:
    """Install the drain; return what runs the SDK: in production its job loop as adapted here (DEPLOYMENT.md,
    "The job loop"), whose open job-take the drain counts as a job held; otherwise its local tools, unchanged."""
    import runpod

    from handler.doors.runpod import jobloop

    if not production:
        Drain(in_flight, settings.drain_timeout_s, ends_process=False).install()
        return lambda: runpod.serverless.start({"handler": handler})
    scaler = jobloop.build_scaler(handler, settings)
    Drain(in_flight, settings.drain_timeout_s, held=lambda: sdk_jobs_held() + int(scaler.taking)).install()
    return lambda: jobloop.run_worker(scaler)


def wait_at_the_gate(settings: Settings, started: float) -> bool:
    """Block until the supervisor says the warm-up is done; False (exit, no job taken) on anything else."""
    loaded_ms = (time.monotonic() - started) * 1000
    log.info("RunPod worker loaded in %d ms; it takes no job before the supervisor's go", loaded_ms)
    timeout_s = gate_timeout_s(settings)
    try:
        if startgate.wait_for_go(sys.stdin.buffer, timeout_s):
            return True
    except KeyboardInterrupt:  # Ctrl-C in a terminal reaches the whole process group; the supervisor reports it
        return False
    # End of file is the supervisor's doing (a failed or stopped start), and it says why.
    log.debug("no go from the supervisor within %.0f s, or its pipe closed: exiting without taking a job", timeout_s)
    return False
