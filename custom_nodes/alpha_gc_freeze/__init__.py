"""Our node pack: keep ComfyUI's periodic gc.collect() from stalling its server.

After a prompt, when 10 s have passed since the last one, ComfyUI's prompt worker runs gc.collect(). That
holds the GIL for about 300 ms here (CPU, test models), and ComfyUI's HTTP server and websocket stall
meanwhile: whoever asks next (a client's /history, the next job's POST /prompt) waits that long
(bench/overhead.py counts those jobs). Nearly all the objects it walks live as long as the process: the
modules imported at start (torch, ComfyUI), then the loaded models. gc.freeze() moves them to the
permanent generation, out of every later collection: once when ComfyUI loads this pack (after its own
modules), and once after the first successful prompt (the warm-up), when the models are loaded.

Frozen objects are still freed by reference counting; only a reference cycle among them would outlive its
use. The worker keeps its models for its whole life, so none is expected. Cycles created later are
collected as before. It registers no nodes.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from typing import Any

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}


def _collect_ms() -> float:
    started = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - started) * 1000


def freeze(when: str) -> None:
    before = _collect_ms()
    gc.freeze()
    logging.info(
        "alpha_gc_freeze: %s: %d objects frozen; a full collection took %.0f ms, now %.0f ms",
        when,
        gc.get_freeze_count(),
        before,
        _collect_ms(),
    )


def freeze_after_first_prompt() -> None:
    import execution  # ComfyUI's, importable only inside ComfyUI

    original = execution.PromptExecutor.execute
    pending = [True]

    @functools.wraps(original)
    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            if pending and getattr(self, "success", False):
                pending.clear()
                freeze("after the first prompt")

    execution.PromptExecutor.execute = execute


freeze("at start")
freeze_after_first_prompt()
