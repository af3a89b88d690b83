"""ComfyUI's output folder, as far as jobs use it: read a job's saved image, and remove whatever a job saved
(and the input image it uploaded).

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

from handler.comfyui.client import ComfyClient, Completion
from handler.deadline import Deadline
from handler.errors import AlphaError, OutputError

log = logging.getLogger(__name__)

QUEUE_TIMEOUT_S = 2.0


class Outputs:
    def __init__(self, folder: Path, client: ComfyClient, inputs: Path | None = None) -> None:
        self.folder, self.client, self.inputs = folder, client, inputs
        self._lock = threading.Lock()
        self._later: dict[str, str] = {}  # job key -> prompt id, for prompts that had not ended when swept

    def local_file(self, image: dict[str, Any]) -> Path | None:
        """The saved image's path in the output folder, if it is there (and inside it), else None."""
        if image.get("type") != "output":
            return None
        root = self.folder.resolve()
        path = (root / str(image.get("subfolder") or "") / str(image.get("filename") or "")).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def fetch(self, node_id: str, done: Completion, deadline: Deadline) -> bytes:
        """The one image the node saved: read from the shared disk, else through ComfyUI's /view."""
        images = (done.outputs.get(node_id) or {}).get("images") or []
        if len(images) != 1:
            raise OutputError(f"the output node {node_id} produced {len(images)} images, expected 1")
        local = self.local_file(images[0])
        if local is not None:
            # ComfyUI shares our disk; its HTTP server may be stalled by its own gc.collect() just now.
            try:
                return local.read_bytes()
            except OSError as exc:
                log.warning("could not read output %s (%s); asking ComfyUI for it", local.name, exc.strerror)
        return self.client.view(images[0], deadline)

    def sweep(self, key: str) -> None:
        """Remove every file the job saved or uploaded (``alpha_<key>_*``)."""
        folders = [self.folder] if self.inputs is None else [self.folder, self.inputs]
        for path in (p for folder in folders for p in folder.glob(f"alpha_{key}_*")):
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
