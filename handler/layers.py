"""The layer modes (``mode: foreground`` / ``background``): which workflow serves each, whether it can run on
this ComfyUI, and the input image it takes, fitted and uploaded.

A mode's workflow is loaded and checked offline at start like every workflow. Whether this ComfyUI can run it
(its LayerDiffuse files present, its nodes there) is asked once, at the first job in that mode: a worker
without a mode's model files still starts, serves ``text``, and refuses the mode with ``mode_unavailable``.

The input image is decoded in the worker's decode pool: at most ``MAX_DECODES`` at once, whatever the number of
jobs (a 25 MP image takes about 200 MB while it is decoded and fitted), each job waiting with its own deadline and
cancel. What a job keeps is the PNG it uploads, never the decoded pixels.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from handler import image_fit
from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline
from handler.errors import ModeUnavailable, WorkflowError
from handler.logs import JobLog
from handler.pool import Pool
from handler.request import MODE_IMAGES, Request
from handler.workflow.graph import Workflow
from handler.workflow.online import ComfyFacts

log = logging.getLogger(__name__)

SETTINGS = {"foreground": "ALPHA_FOREGROUND_WORKFLOW", "background": "ALPHA_BACKGROUND_WORKFLOW"}
MAX_DECODES = 2  # input images decoded at once in this worker (bench/decode_bounds.py: memory of 12 jobs at once)
DECODES = Pool(MAX_DECODES, "alpha-decode")


@dataclass(frozen=True)
class Upload:
    """A job's input image as it goes to ComfyUI: under the job's unguessable key, swept with its outputs."""

    marker: str  # the LoadImage node's marker, ``alpha:<image>``
    filename: str
    data: bytes


def load(paths: dict[str, Path]) -> dict[str, Workflow]:
    """Each mode's workflow, checked offline and for taking the mode's image."""
    workflows = {}
    for mode, path in paths.items():
        workflow = Workflow.load(path)
        if workflow.mode != mode:
            raise WorkflowError(
                f"{SETTINGS[mode]}: {path.name} is a '{workflow.mode}' workflow; mode '{mode}' needs one that "
                f"takes a {MODE_IMAGES[mode]} (marker alpha:{MODE_IMAGES[mode]})"
            )
        workflows[mode] = workflow
    return workflows


class Modes:
    """The layer modes this worker serves."""

    def __init__(self, workflows: dict[str, Workflow], client: ComfyClient) -> None:
        self.workflows, self.client = workflows, client
        self._problems: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def pick(self, mode: str, deadline: Deadline) -> Workflow:
        """The mode's workflow, or ModeUnavailable saying why this worker cannot serve it."""
        workflow = self.workflows.get(mode)
        if workflow is None:
            raise ModeUnavailable(
                f"mode '{mode}' is turned off on this worker ({SETTINGS[mode]} is empty)", field="mode"
            )
        problems = self.problems(mode, deadline)
        if problems:
            raise ModeUnavailable(f"mode '{mode}' cannot run on this worker: {'; '.join(problems)}", field="mode")
        return workflow

    def record(self, mode: str, problems: list[str]) -> None:
        """What a check of the mode's workflow against this ComfyUI found, from a caller that ran it already."""
        with self._lock:
            self._problems[mode] = list(problems)

    def problems(self, mode: str, deadline: Deadline) -> list[str]:
        """What stops the mode's workflow on this ComfyUI; asked once (a model file does not appear while the
        worker runs), unless ComfyUI did not answer."""
        with self._lock:
            if mode not in self._problems:
                found = ComfyFacts(self.client, deadline).problems(self.workflows[mode].graph)
                if found:
                    log.warning("mode %s is unavailable: %s", mode, "; ".join(found))
                self._problems[mode] = found
            return self._problems[mode]


def target_size(request: Request, workflow: Workflow) -> tuple[int, int]:
    """The size the job runs at: the request's, else (layer modes) the one the input image fits, else the
    workflow's default."""
    requested = (request.width, request.height) if request.width and request.height else None
    image = request.image
    if image is not None and workflow.image_input is not None:
        return image_fit.target_size(image.size, workflow.sizes, requested, workflow.image_input)
    return requested or (int(workflow.defaults["width"]), int(workflow.defaults["height"]))


def input_png(
    request: Request,
    workflow: Workflow,
    size: tuple[int, int],
    deadline: Deadline,
    *,
    cancel: threading.Event | None,
    jlog: JobLog,
) -> bytes | None:
    """The input image decoded, checked, fitted to ``size`` (the size the job runs at) and flattened: the PNG that
    is uploaded; None in mode ``text``. Decoded in the decode pool, waited for with the job's deadline and cancel."""
    image, name = request.image, workflow.image_input
    if image is None or name is None:
        return None
    started = time.monotonic()
    data = DECODES.run(lambda: image_fit.upload_png(image, size), deadline, cancel, f"'{name}' was decoded")
    jlog.info(
        "decoded the %s %dx%d '%s' into a %dx%d PNG in %d ms",
        image.format.upper(),
        *image.size,
        name,
        *size,
        (time.monotonic() - started) * 1000,
    )
    return data


def upload_for(workflow: Workflow, key: str, data: bytes | None) -> Upload | None:
    """The input PNG as the attempt ``key`` uploads it; None in mode ``text``."""
    name = workflow.image_input
    if data is None or name is None:
        return None
    return Upload(f"alpha:{name}", f"alpha_{key}_{name}.png", data)


def upload(client: ComfyClient, image: Upload, deadline: Deadline, jlog: JobLog) -> int:
    """The input image into ComfyUI's input folder; returns the milliseconds it took."""
    started = time.monotonic()
    client.upload_image(image.filename, image.data, deadline)
    upload_ms = int((time.monotonic() - started) * 1000)
    jlog.info("uploaded the %d-byte input image in %d ms", len(image.data), upload_ms)
    return upload_ms
