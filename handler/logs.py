"""Logging setup: one line per event, with the job id on every line that has one.

A job's code logs through ``JobLog``; what logs without it while a job runs (a library's warning: PIL's about a
broken EXIF block, say) gets the job's id from ``job_context``, which a door enters for each job; the threads a
job's work moves to (``handler.doors.threads``, ``handler.pool``) carry the context along. Python's warnings are
logged (one line each, on the ``py.warnings`` logger), not printed, so that they get it too."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import warnings
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"
_JOB_ID: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")


@contextlib.contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Within the block (and the threads that copy its context), a line logged without a job id gets this one."""
    token = _JOB_ID.set(job_id or "-")
    try:
        yield
    finally:
        _JOB_ID.reset(token)


def _log_warning(  # noqa: PLR0917  # warnings.showwarning's signature
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning``, as one log line: the warning and where it was raised."""
    where = "/".join(Path(filename).parts[-2:])
    logging.getLogger("py.warnings").warning("%s: %s (%s:%d)", category.__name__, message, where, lineno)


def current_job_id() -> str:
    """The job id of the enclosing ``job_context``, or "-"."""
    return _JOB_ID.get()


class _DefaultJobId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = current_job_id()
        return True


class JobLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that stamps every record with a job id."""

    def __init__(self, logger: logging.Logger, job_id: str | None) -> None:
        super().__init__(logger, {"job_id": job_id or "-"})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs.setdefault("extra", {})["job_id"] = (self.extra or {}).get("job_id", "-")
        return msg, kwargs


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_DefaultJobId())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    warnings.showwarning = _log_warning
    # urllib3 logs every request at DEBUG, including URLs with image names; keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
