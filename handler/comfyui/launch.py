"""``python launch.py main.py [ComfyUI's arguments]``, in ComfyUI's folder: ComfyUI's own ``main.py``, headless.

ComfyUI loads parts this worker never uses, and logs a traceback and ``IMPORT FAILED`` for each whose package is
not installed: the spandrel, kornia and torchaudio extras (torchaudio has no release for the pinned torch), and
the web UI's workflow templates and docs (this worker serves no web UI: ``--front-end-root`` is an empty folder).
An operator reading a healthy worker's log must not meet tracebacks, so this launcher tells ComfyUI to skip them,
as listed in ``pins/comfyui.json`` (``headless``), then runs ``main.py`` unchanged. Installing the packages
instead would add ~110 MB to the image and still leave the audio extras failing (DEPLOYMENT.md, "A clean start
log").

It runs inside ComfyUI's process, so it imports nothing of ``handler`` (ComfyUI's folder is on ``sys.path``, not
ours) and only the standard library. Each skip is applied when ComfyUI imports the module it patches, through an
import hook, so that ComfyUI's own start-up order is unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import logging
import os
import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

PINS = Path(__file__).resolve().parents[2] / "pins" / "comfyui.json"

log = logging.getLogger("alpha_launch")

Patch = Callable[[ModuleType], None]


class AfterImport(importlib.abc.MetaPathFinder):
    """Runs a patch on a module right after Python executed it, the first time it is imported."""

    def __init__(self, patches: dict[str, Patch]) -> None:
        self.patches = dict(patches)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self.patches.pop(fullname, None)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def skip_extras(names: frozenset[str]) -> Patch:
    """``nodes``: its built-in extras in ``names`` are not loaded (and not reported as failed)."""

    def patch(nodes: ModuleType) -> None:
        load = nodes.load_custom_node

        async def load_custom_node(
            module_path: str, ignore: Any = frozenset(), module_parent: str = "custom_nodes"
        ) -> bool:
            if module_parent == "comfy_extras" and os.path.basename(module_path) in names:
                log.info("not loading comfy_extras/%s: unused by this worker", os.path.basename(module_path))
                return True
            result: bool = await load(module_path, ignore, module_parent)
            return result

        setattr(nodes, "load_custom_node", load_custom_node)  # noqa: B010 (a module of ComfyUI's, untyped here)

    return patch


def no_web_assets(frontend_management: ModuleType) -> None:
    """``app.frontend_management``: no workflow templates or embedded docs to serve (no web UI here)."""
    manager = frontend_management.FrontendManager
    for name in ("legacy_templates_path", "template_asset_handler", "embedded_docs_path"):
        setattr(manager, name, classmethod(lambda cls: None))


def patches(pins: dict[str, Any]) -> dict[str, Patch]:
    headless = pins.get("headless", {})
    found: dict[str, Patch] = {"nodes": skip_extras(frozenset(headless.get("skip_extras", {})))}
    if headless.get("no_web_assets", False):
        found["app.frontend_management"] = no_web_assets
    return found


def main(argv: list[str]) -> None:
    if not argv or not argv[0].endswith("main.py"):
        raise SystemExit("usage: python launch.py main.py [ComfyUI's arguments]")
    main_py = Path(argv[0]).resolve()
    sys.meta_path.insert(0, AfterImport(patches(json.loads(PINS.read_text()))))
    # ComfyUI's start-up database (alembic, with no migrations in this pin) would log its plugin set-up at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # As `python main.py ...` would have it: main.py's folder first on the path, its arguments in sys.argv.
    sys.path[0] = str(main_py.parent)
    sys.argv = [str(main_py), *argv[1:]]
    runpy.run_path(str(main_py), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
