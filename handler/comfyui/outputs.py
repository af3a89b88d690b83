"""ComfyUI's output folder, as far as jobs use it: read a job's saved image, and remove whatever a job saved.

ComfyUI keeps every output; the image travels in the response (or the job failed), so each job's files go
once it is over: no job, failed or not, leaves a file behind. A cancelled prompt may still write after the
interrupt (a node that already runs finishes), so its files are removed once ComfyUI has let go of it:
at once when it ended in time, else at the start of a later job (``sweep_ended``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline
from handler.errors import AlphaError

log = logging.getLogger(__name__)

QUEUE_TIMEOUT_S = 2.0


class Outputs:
    def __init__(self, folder: Path, client: ComfyClient) -> None:
        self.folder, self.client = folder, client
        self._lock = threading.Lock()
        self._later: dict[str, str] = {}  # job key -> prompt id, for prompts that had not ended when swept

    def local_file(self, image: dict[str, Any]) -> Path | None:
        """The saved image's path in the output folder, if it is there (and inside it), else None."""
        if image.get("type") != "output":
            return None
        root = self.folder.resolve()
        path = (root / str(image.get("subfolder") or "") / str(image.get("filename") or "")).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def sweep(self, key: str) -> None:
        """Remove every file the job saved (``alpha_<key>_*``)."""
        for path in self.folder.glob(f"alpha_{key}_*"):
            try:
                path.unlink()
            except OSError as exc:
                log.warning("could not remove output %s: %s", path.name, exc)

    def sweep_after(self, key: str, prompt_id: str) -> None:
        """The job's prompt had not ended when its files were swept: sweep again once it has."""
        with self._lock:
            self._later[key] = prompt_id

    def sweep_ended(self) -> None:
        """Sweep the jobs whose late prompts have ended since; the others wait for the next call."""
        with self._lock:
            later = dict(self._later)
        if not later:
            return
        try:
            active = self.client.active(Deadline(QUEUE_TIMEOUT_S))
        except AlphaError as exc:
            log.warning("could not read ComfyUI's queue (%s); late outputs are swept later", exc.message)
            return
        for key, prompt_id in later.items():
            if prompt_id not in active:
                self.sweep(key)
                with self._lock:
                    self._later.pop(key, None)
                log.info("prompt %s has ended; its late outputs are removed", prompt_id)
