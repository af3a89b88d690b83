"""Is this worker ready for jobs? ComfyUI answers, has every node the workflow uses, accepts its option
values (a missing checkpoint shows up as a value ComfyUI does not offer), and has the LayerDiffuse model
files the workflow's nodes will load.

Which LayerDiffuse file each node input needs is data: ``model_files`` in ``custom_nodes/lock.json``, next to
the commit it describes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handler.comfy import ComfyClient
from handler.deadline import Deadline
from handler.errors import AlphaError
from handler.settings import REPO
from handler.workflow import Workflow

LOCK = REPO / "custom_nodes" / "lock.json"


@dataclass(frozen=True)
class Readiness:
    problems: list[str] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.problems


def required_model_files(workflow: Workflow, lock_path: Path = LOCK) -> dict[str, set[str]]:
    """Folder -> file names the workflow's custom nodes load by themselves (not through a combo input)."""
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    needed: dict[str, set[str]] = {}
    for pinned in lock["nodes"]:
        spec = pinned.get("model_files")
        if not spec:
            continue
        for node in workflow.graph.values():
            for input_name, files in spec["nodes"].get(node["class_type"], {}).items():
                value = node["inputs"].get(input_name)
                if isinstance(value, str) and value in files:
                    needed.setdefault(spec["folder"], set()).add(files[value])
    return needed


def combo_options(spec: Any) -> list[Any] | None:
    """The allowed values of an input from /object_info, or None if it is not a combo.
    Classic nodes give ``[[options...], {...}]``; V3 nodes give ``["COMBO", {"options": [...]}]``."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return options if isinstance(options, list) else None
    return None


def _node_problems(workflow: Workflow, client: ComfyClient, deadline: Deadline) -> list[str]:
    problems = []
    infos: dict[str, dict[str, Any] | None] = {}
    for node_id, node in workflow.graph.items():
        class_type = node["class_type"]
        if class_type not in infos:
            infos[class_type] = client.object_info(class_type, deadline)
        info = infos[class_type]
        if info is None:
            problems.append(f"node {node_id}: ComfyUI has no node type {class_type}")
            continue
        declared = info.get("input") or {}
        specs = {**declared.get("optional", {}), **declared.get("required", {})}
        for name, value in node["inputs"].items():
            options = combo_options(specs.get(name))
            if options is not None and isinstance(value, str) and value not in options:
                problems.append(f"node {node_id} ({class_type}): {name} '{value}' is not available in ComfyUI "
                                "(a missing model file, or a value this version does not have)")
    return problems


def check(workflow: Workflow, client: ComfyClient, timeout_s: float = 10.0) -> Readiness:
    """One readiness pass, bounded by timeout_s; never raises for an unready ComfyUI."""
    deadline = Deadline(timeout_s)
    checks = {"workflow": f"{workflow.name} (sha256 {workflow.sha256[:12]}) loaded"}
    try:
        stats = client.system_stats(deadline).get("system", {})
        checks["comfyui"] = f"answers (ComfyUI {stats.get('comfyui_version')})"
    except AlphaError as exc:
        return Readiness([f"ComfyUI: {exc.message}"], {**checks, "comfyui": "no answer"})
    try:
        problems = _node_problems(workflow, client, deadline)
        checks["nodes"] = "ok" if not problems else f"{len(problems)} problem(s)"
        missing = []
        for folder, names in sorted(required_model_files(workflow).items()):
            present = set(client.model_files(folder, deadline) or [])
            missing += [f"{folder}/{name}" for name in sorted(names - present)]
        checks["models"] = "ok" if not missing else "missing " + ", ".join(missing)
        problems += [f"model file {m} is missing" for m in missing]
    except AlphaError as exc:
        problems = [f"ComfyUI: {exc.message}"]
    return Readiness(problems, checks)
