"""Our node pack: keep ComfyUI's periodic gc.collect() from stalling its server.

After a prompt, when 10 s have passed since the last one, ComfyUI's prompt worker runs gc.collect(). That
holds the GIL for about 300 ms here (CPU, test models), and ComfyUI's HTTP server and websocket stall
meanwhile: whoever asks next (a client's /history, the next job's POST /prompt) waits that long
(bench/overhead.py counts those jobs). Nearly all the objects it walks were made by the imports at start
(torch, ComfyUI) and live as long as the process; gc.freeze() moves them to the permanent generation, out
of every later collection. Cycles created after this still get collected as before.

It registers no nodes. ComfyUI imports custom nodes after its own modules, so this runs once they exist.
"""

from __future__ import annotations

import gc
import logging
import time

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}


def _collect_ms() -> float:
    started = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - started) * 1000


def freeze() -> None:
    before = _collect_ms()
    gc.freeze()
    logging.info("alpha_gc_freeze: %d objects frozen; a full collection took %.0f ms, now %.0f ms",
                 gc.get_freeze_count(), before, _collect_ms())


freeze()
