"""The core: ``Generator.generate(request) -> Result``. It knows nothing of the door it was called from."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from handler import __version__, attempts, layers
from handler import asset as assets
from handler.comfyui.client import ComfyClient, Completion, ProgressCallback
from handler.comfyui.outputs import Outputs
from handler.deadline import Deadline
from handler.errors import InputError, JobCancelled, JobTimeout, WorkflowError
from handler.logs import JobLog
from handler.png import decode
from handler.request import Request, SizeTable, check_size
from handler.results import Result, blended, canvas, describe
from handler.settings import Settings
from handler.workflow.graph import Workflow
from handler.workflow.rules import OPAQUE_MODES

log = logging.getLogger(__name__)

INSTALL_STAMP = ".alpha-install.json"
WS_CLOSE_TIMEOUT_S = 1.0
# How long a failed job waits for its cancelled prompt to end, so its files can be swept at once.
SETTLE_S = 10.0


@dataclass(frozen=True)
class Prepared:
    """A job checked and made ready before anything reaches ComfyUI (``Generator.prepare``)."""

    workflow: Workflow
    size: tuple[int, int]  # width, height
    run_size: tuple[int, int]  # the size and steps that run: the request's, or test mode's
    steps: int | None
    image: bytes | None = field(repr=False)  # the layer mode's input image: the PNG to upload, fitted


@dataclass(frozen=True)
class _Job:
    """One attempt at a job, planned: what runs in ComfyUI and what the result reports."""

    prepared: Prepared
    seed: int
    key: str  # names the job's output files
    graph: dict[str, Any]
    shape: assets.Shape
    upload: layers.Upload | None  # the layer mode's input image


@dataclass(frozen=True)
class _Ran:
    """The prompt's end in ComfyUI, with when it was submitted and when it finished (monotonic)."""

    prompt_id: str
    done: Completion
    submitted: float
    finished: float
    upload_ms: int | None

    @property
    def wait_ms(self) -> int:
        return int((self.finished - self.submitted) * 1000)


def test_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """Scale to the given longest side, keeping the aspect, in multiples of 64."""
    scale = longest / max(width, height)
    return (max(64, int(width * scale) // 64 * 64), max(64, int(height * scale) // 64 * 64))


class Generator:
    def __init__(
        self, settings: Settings, *, workflow: Workflow | None = None, client: ComfyClient | None = None
    ) -> None:
        self.settings = settings
        self.workflow = workflow or Workflow.load(settings.workflow)
        # The workflows a request may name (ALPHA_WORKFLOW_ALLOWLIST), by name; loading checks each one.
        self.allowed: dict[str, Workflow] = {}
        for path in settings.workflow_allowlist:
            loaded = self.workflow if path == settings.workflow and workflow is None else Workflow.load(path)
            if self.allowed.setdefault(loaded.name, loaded) is not loaded:
                raise WorkflowError(f"two allowlisted workflows are named {loaded.name}; names must be unique")
        for loaded in self.workflows:
            if loaded.mode != "text":
                raise WorkflowError(f"{loaded.name} takes an input image; set it as a layer mode's workflow instead")
        self.client = client or ComfyClient(settings.comfyui_url, http_timeout_s=settings.http_timeout_s)
        self.outputs = Outputs(settings.effective_output_dir, self.client, settings.input_dir)
        self.modes = layers.Modes(layers.load(settings.layer_workflows), self.client)
        self._versions: dict[str, Any] | None = None

    @property
    def workflows(self) -> list[Workflow]:
        """Every workflow this generator may run: the production one first."""
        return [self.workflow, *(w for w in self.allowed.values() if w is not self.workflow)]

    def sizes(self) -> SizeTable:
        """The sizes each workflow a request may pick allows (the OpenAPI document states them)."""
        named = {name: workflow.sizes for name, workflow in self.allowed.items()}
        return SizeTable(self.workflow.sizes, named, {m: w.sizes for m, w in self.modes.workflows.items()})

    def pick(self, request: Request, deadline: Deadline | None = None) -> Workflow:
        """The request's workflow, checked: its name is allowlisted (or its layer mode served here) and its size
        is one the workflow allows."""
        workflow = self.workflow
        if request.mode != "text":  # the parse refused a 'workflow' with it
            workflow = self.modes.pick(request.mode, deadline or Deadline(self.settings.job_timeout_s))
        elif request.workflow is not None:
            if not self.allowed:
                raise InputError(
                    "'workflow' is not enabled on this worker (ALPHA_WORKFLOW_ALLOWLIST is empty); "
                    "omit it to use the production workflow",
                    field="workflow",
                )
            if request.workflow not in self.allowed:
                raise InputError(
                    f"unknown workflow '{request.workflow}'; allowed: {', '.join(self.allowed)}", field="workflow"
                )
            workflow = self.allowed[request.workflow]
        if request.width is not None and request.height is not None:
            check_size(request.width, request.height, workflow.sizes)
        layers.target_size(request, workflow)  # a layer mode's image fits the size, or is refused now
        return workflow

    def versions(self, deadline: Deadline | None = None) -> dict[str, Any]:
        """Handler, ComfyUI, PyTorch and custom-node versions; read once, then cached."""
        if self._versions is None:
            stats = self.client.system_stats(deadline).get("system", {})
            stamp_path = self.settings.comfyui_dir / INSTALL_STAMP
            stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
            self._versions = {
                "handler": __version__,
                "comfyui": stats.get("comfyui_version"),
                "pytorch": stats.get("pytorch_version"),
                "custom_nodes": {n["name"]: n["commit"] for n in stamp.get("custom_nodes", [])},
            }
        return self._versions

    def generate(
        self,
        request: Request,
        *,
        job_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: Deadline | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        """Run one job. ``deadline`` lets a door start the clock when the request arrived (time spent waiting
        for a thread counts); by default it starts now, with the job timeout setting. Setting ``cancel``
        (from another thread) stops the job within a moment: its prompt is interrupted and dequeued."""
        jlog = JobLog(log, job_id)
        deadline = deadline or Deadline(self.settings.job_timeout_s)
        prepared = self.prepare(request, deadline, cancel=cancel, jlog=jlog)

        def attempt(seed: int) -> Result:
            job = self._plan(request, prepared, seed, deadline, jlog)
            try:
                ran = self._run(job, deadline, jlog, on_progress=on_progress, cancel=cancel)
                return self._result(job, ran, deadline, jlog)
            finally:
                self.outputs.sweep(job.key)

        retries = self.settings.transparency_retries
        result, tried = attempts.run(attempt, seed=request.seed, retries=retries, deadline=deadline, jlog=jlog)
        result.info["attempts"] = [a.as_dict() for a in tried]
        return result

    def prepare(
        self,
        request: Request,
        deadline: Deadline | None = None,
        *,
        cancel: threading.Event | None = None,
        jlog: JobLog | None = None,
    ) -> Prepared:
        """All that is checked before anything reaches ComfyUI: ``pick``, then the layer mode's input image decoded
        into the PNG to upload (``layers.input_png``: in the decode pool, within the deadline and the cancel)."""
        deadline = deadline or Deadline(self.settings.job_timeout_s)
        workflow = self.pick(request, deadline)
        size = layers.target_size(request, workflow)
        run_size, steps = size, None
        if self.settings.test_models:  # only after the request was validated exactly as in production
            run_size, steps = test_size(*size, self.settings.test_size), self.settings.test_steps
        image = layers.input_png(request, workflow, run_size, deadline, cancel=cancel, jlog=jlog or JobLog(log, None))
        return Prepared(workflow, size, run_size, steps, image)

    def _plan(self, request: Request, prepared: Prepared, seed: int, deadline: Deadline, jlog: JobLog) -> _Job:
        """One attempt at the job: its seed and graph; nothing is sent yet."""
        if deadline.expired():
            raise JobTimeout(f"the deadline of {deadline.seconds:.0f} s passed before the job could start")
        workflow, key = prepared.workflow, uuid.uuid4().hex
        upload = layers.upload_for(workflow, key, prepared.image)
        graph = workflow.apply(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seed=seed,
            width=prepared.run_size[0],
            height=prepared.run_size[1],
            filename_prefix=f"alpha_{key}",
            steps=prepared.steps,
            images={upload.marker: upload.filename} if upload else None,
        )
        size = "x".join(map(str, prepared.size))
        jlog.info("job accepted: seed %d, %s, workflow %s (mode %s)", seed, size, workflow.name, request.mode)
        jlog.debug("prompt %r, negative prompt %r", request.prompt, request.negative_prompt)
        shape = assets.Shape(request.format, request.trim, request.trim_margin)
        return _Job(prepared, seed, key, graph, shape, upload)

    def _run(
        self,
        job: _Job,
        deadline: Deadline,
        jlog: JobLog,
        *,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> _Ran:
        """The job in ComfyUI: the socket opened before the prompt is submitted (no event missed), then
        followed to the prompt's end."""
        self.client.retry_cancels()
        self.outputs.sweep_ended()
        upload_ms = layers.upload(self.client, job.upload, deadline, jlog) if job.upload else None
        client_id = self.client.new_client_id()
        ws = self.client.connect(client_id, deadline)
        try:
            if cancel is not None and cancel.is_set():
                raise JobCancelled("the job was cancelled before its prompt was submitted")
            submitted = time.monotonic()
            prompt_id = self.client.submit(job.graph, client_id, deadline)
            jlog.info("submitted prompt %s in %d ms", prompt_id, (time.monotonic() - submitted) * 1000)
            try:
                done, ws = self.client.follow(
                    ws, client_id, prompt_id, deadline, on_progress=on_progress, cancel=cancel
                )
            except BaseException as exc:
                jlog.warning(
                    "prompt %s failed after %d ms (%s); cancelling it",
                    prompt_id,
                    (time.monotonic() - submitted) * 1000,
                    getattr(exc, "code", type(exc).__name__),
                )
                ws.shutdown()  # type: ignore[no-untyped-call]  # ComfyUI may be frozen: no closing handshake
                self._stop(prompt_id, job.key, jlog)
                raise
        finally:
            ws.close(timeout=WS_CLOSE_TIMEOUT_S)  # a no-op after shutdown()
        ran = _Ran(prompt_id, done, submitted, time.monotonic(), upload_ms)
        jlog.info("prompt %s finished: execution %s ms, wait %d ms", prompt_id, done.execution_ms, ran.wait_ms)
        return ran

    def _stop(self, prompt_id: str, key: str, jlog: JobLog) -> None:
        """Interrupt and dequeue the prompt, then wait (briefly) until ComfyUI has let go of it, so that the
        sweep after it finds whatever a node that was already running still wrote. If ComfyUI does not answer
        or the prompt runs on, its files are swept once it has ended."""
        if self.client.cancel(prompt_id) and self.client.wait_until_ended(prompt_id, SETTLE_S):
            return
        jlog.warning("prompt %s has not ended yet; its outputs are removed once it has", prompt_id)
        self.outputs.sweep_after(key, prompt_id)

    def _result(self, job: _Job, ran: _Ran, deadline: Deadline, jlog: JobLog) -> Result:
        """The PNG fetched and checked for real transparency on the generated canvas, then made into the asked
        asset (trimmed, encoded), with what the job reports about itself."""
        prepared = job.prepared
        png = self.outputs.fetch(prepared.workflow.node("alpha:output"), ran.done, deadline)
        opaque = prepared.workflow.mode in OPAQUE_MODES
        image = decode(png, rgba=not opaque)
        stats = canvas(image, opaque=opaque, max_uniform=self.settings.max_uniform_alpha)
        others = blended(self.outputs, prepared.workflow, ran.done, job.key, format=job.shape.format, deadline=deadline)
        fetched = time.monotonic()
        asset = assets.make(png, image, stats, job.shape)
        info = describe(prepared.workflow, job.seed, prepared.size, ran.prompt_id, asset)
        info["timings_ms"] = {
            "comfyui_execution": ran.done.execution_ms,
            "comfyui_wait": ran.wait_ms,
            "fetch": int((fetched - ran.finished) * 1000),
            "asset": int((time.monotonic() - fetched) * 1000),
            "total": deadline.elapsed_ms(),
        }
        if ran.upload_ms is not None:
            info["timings_ms"]["upload"] = ran.upload_ms
        info["versions"] = self.versions(deadline)
        if self.settings.test_models:
            info["test_mode"] = {"width": prepared.run_size[0], "height": prepared.run_size[1], "steps": prepared.steps}
        jlog.info(
            "job done in %d ms (prompt %s, fetch %d ms): %d-byte %s, alpha mean %.1f, %.1f%% transparent",
            info["timings_ms"]["total"],
            ran.prompt_id,
            info["timings_ms"]["fetch"],
            len(asset.data),
            asset.format.upper(),
            stats.alpha_mean,
            stats.transparent * 100,
        )
        filename = f"alpha_{job.key}.{asset.format}"
        return Result(asset.data, filename, info, asset.mime_type, layers=others)

    def warm_up(self) -> Result:
        """One job through the core: the production workflow at ALPHA_WARMUP_STEPS (test mode: its own steps
        and size). It loads every model and warms the kernels, so the first real job does not pay for it."""
        workflow = self.workflow.with_input("alpha:sampler", "steps", self.settings.warmup_steps)
        warm = Generator(self.settings, workflow=workflow, client=self.client)
        deadline = Deadline(self.settings.warmup_timeout_s)  # a cold load takes longer than a warm job
        return warm.generate(Request(prompt="warm-up: a glass sphere", seed=0), job_id="warm-up", deadline=deadline)
