"""Logging setup: one line per event, with the job id on every line that has one."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"


class _DefaultJobId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = "-"
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
    # urllib3 logs every request at DEBUG, including URLs with image names; keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
