"""The exception hierarchy. Each class carries a stable ``code`` that clients can match on, and the HTTP
``status`` the alpha API answers with (the OpenAPI document reads both from here).

Every door turns an ``AlphaError`` into its response in exactly one place,
from ``to_body()``: ``{"code", "message", "field"}``.
"""

from __future__ import annotations

from typing import Any


class AlphaError(Exception):
    code = "internal_error"
    status = 500
    # Whether the worker is unusable afterwards and RunPod should replace it.
    refresh_worker = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def statuses() -> dict[str, int]:
    """Every code a door can answer with, and its HTTP status (start-up failures never reach a client)."""
    found: dict[str, int] = {}
    todo: list[type[AlphaError]] = [AlphaError]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if not issubclass(cls, StartupError) and found.setdefault(cls.code, cls.status) != cls.status:
            raise TypeError(f"code {cls.code} has two statuses: {found[cls.code]} and {cls.status}")
    return dict(sorted(found.items()))


def error_body(exc: AlphaError) -> dict[str, Any]:
    """The error body every door returns: ``{"status": "error", "error": "<code>: <message>", code, message,
    field, ...}``."""
    return {"status": "error", "error": str(exc), **exc.to_body()}


class InputError(AlphaError):
    """The job input is invalid; nothing was submitted to ComfyUI."""

    code = "invalid_input"
    status = 400


class ModeUnavailable(AlphaError):
    """The request's layer mode is turned off on this worker, or its workflow cannot run here (a model file is
    missing); nothing was submitted. Another worker, or mode ``text``, may serve it."""

    code = "mode_unavailable"
    status = 501


class WorkflowError(AlphaError):
    """The workflow file cannot be used (format, markers, or ComfyUI refused it)."""

    code = "invalid_workflow"


class ComfyUnavailable(AlphaError):
    """ComfyUI does not answer, or went away during the job."""

    code = "comfyui_unavailable"
    status = 503
    refresh_worker = True


class ComfyUnresponsive(ComfyUnavailable):
    """ComfyUI did not answer in time: it may be hung or busy, not gone. A job keeps waiting for it until its
    deadline, and then fails with ``timeout``."""


class ComfyGone(ComfyUnavailable):
    """Nothing listens where ComfyUI should: it died. A job fails at once."""


class JobTimeout(AlphaError):
    """The per-job deadline passed; the prompt was interrupted and dequeued."""

    code = "timeout"
    status = 504


class JobCancelled(AlphaError):
    """The job was cancelled (RunPod's stop signal); the prompt was interrupted and dequeued."""

    code = "cancelled"


class ExecutionError(AlphaError):
    """A node failed while ComfyUI ran (or validated) the prompt."""

    code = "execution_error"

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        node_type: str | None = None,
        exception_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body.update(node_id=self.node_id, node_type=self.node_type, exception_type=self.exception_type)
        return body


class OutputError(AlphaError):
    """ComfyUI finished but its output is missing or is not an RGBA PNG."""

    code = "invalid_output"


class TransparencyError(OutputError):
    """The PNG is RGBA but its alpha is constant: LayerDiffuse did not take effect."""

    code = "transparency_failed"


class OutputTooLarge(AlphaError):
    """RunPod door: the success output is over ALPHA_MAX_OUTPUT_BYTES (RunPod's payload limit) and no bucket is
    configured to take the image instead."""

    code = "output_too_large"


class UploadFailed(AlphaError):
    """RunPod door: the output was too large to send, and uploading the image to the bucket failed."""

    code = "upload_failed"


# Refusals of the local alpha API's HTTP layer, before any work is done.
class BadRequest(AlphaError):
    """Alpha API: the HTTP request itself is malformed (what aiohttp's parser refuses: the request line, a header,
    a chunk; or a header that must come once, twice)."""

    code = "bad_request"
    status = 400


class Unauthorized(AlphaError):
    code = "unauthorized"
    status = 401


class NotFound(AlphaError):
    code = "not_found"
    status = 404


class MethodNotAllowed(AlphaError):
    code = "method_not_allowed"
    status = 405


class BodyTooLarge(AlphaError):
    code = "body_too_large"
    status = 413


class HostNotAllowed(AlphaError):
    """Alpha API: the ``Host`` header names no host this server answers to (DNS rebinding, say)."""

    code = "host_not_allowed"
    status = 403


class CrossSiteRequest(AlphaError):
    """Alpha API: the request came from another origin (a web page driving it through the browser)."""

    code = "cross_site_request"
    status = 403


class UnsupportedMediaType(AlphaError):
    """Alpha API: a JSON endpoint got a body that is not declared as ``application/json``."""

    code = "unsupported_media_type"
    status = 415


class StartupError(AlphaError):
    """The supervisor cannot start a worker; no door ever answers with it (``statuses`` leaves it out)."""

    code = "startup_failed"


class GpuUnavailable(StartupError):
    """The GPU preflight failed: CUDA is missing, or a test computation on the GPU failed or hung."""

    code = "gpu_unavailable"


class TestModelsMissing(StartupError):
    """Test mode, and the random-weight test models were never built."""

    __test__ = False  # not a pytest test class, whatever its name
    code = "test_models_missing"
