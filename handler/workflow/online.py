"""The workflow contract against a running ComfyUI: node types exist, required inputs are present and of the
right type, links point at an output of the right type, option values (sampler, checkpoint name...) are
allowed, exactly one node saves the result, and the model files the LayerDiffuse nodes load are present.

The rules are pure: they take ComfyUI's ``/object_info`` and a model-folder lister, so tests can feed them
directly; ``ComfyFacts`` reads both from a running ComfyUI, once. Which
LayerDiffuse file each node input needs is data: ``model_files`` in ``custom_nodes/lock.json``, next to
the commit it describes.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline
from handler.paths import REPO
from handler.request import MODE_IMAGES
from handler.workflow.rules import is_link, title

# Inputs the handler sets per job (the uploaded image's name): their value in the file is a placeholder.
INJECTED = {(f"alpha:{image}", "image") for image in MODE_IMAGES.values()}

LOCK = REPO / "custom_nodes" / "lock.json"
MODEL_HINT = " (is the model file missing?)"
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".gguf")
ModelLister = Callable[[str], list[str] | None]


def suggest(value: Any, options: list[Any]) -> str:
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def combo_options(spec: Any) -> list[Any] | None:
    """The allowed values of an input, or None if it is not a combo. Classic nodes declare
    ``[[options...], {...}]``; V3 nodes declare ``["COMBO", {"options": [...]}]``."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return options if isinstance(options, list) else None
    return None


def required_model_files(graph: dict[str, Any], lock_path: Path = LOCK) -> dict[str, set[str]]:
    """Folder -> file names the workflow's custom nodes load by themselves (not through a combo input)."""
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    needed: dict[str, set[str]] = {}
    for pinned in lock["nodes"]:
        spec = pinned.get("model_files")
        for node in graph.values() if spec else ():
            for input_name, files in spec["nodes"].get(node["class_type"], {}).items():
                value = node["inputs"].get(input_name)
                if isinstance(value, str) and value in files:
                    needed.setdefault(spec["folder"], set()).add(files[value])
    return needed


def _literal_problem(value: Any, spec: Any) -> str | None:
    options = combo_options(spec)
    if options is not None:
        if value in options:
            return None
        model = str(value).endswith(MODEL_SUFFIXES)
        return f"'{value}' is not available in ComfyUI{MODEL_HINT if model else ''}{suggest(value, options)}"
    kind = spec[0] if isinstance(spec, list) and spec and isinstance(spec[0], str) else None
    limits = spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    expected = {"INT": (int,), "FLOAT": (int, float), "STRING": (str,), "BOOLEAN": (bool,)}.get(kind or "")
    if expected is None:
        return None
    if isinstance(value, bool) != (kind == "BOOLEAN") or not isinstance(value, expected):
        return f"{value!r} is not a valid {kind}"
    if kind in ("INT", "FLOAT") and isinstance(value, int | float):
        low, high = limits.get("min"), limits.get("max")
        if (isinstance(low, int | float) and value < low) or (isinstance(high, int | float) and value > high):
            return f"{value!r} is outside {low}..{high}"
    return None


def _link_problem(graph: dict[str, Any], info: dict[str, Any], link: list[Any], spec: Any) -> str | None:
    source_id = str(link[0])
    source_class = graph[source_id]["class_type"]
    outputs = (info.get(source_class) or {}).get("output")
    if source_class not in info or not isinstance(outputs, list):
        return None  # reported for the source node itself
    if link[1] >= len(outputs):
        return f"links to output {link[1]} of node {source_id} ({source_class}), which has {len(outputs)} output(s)"
    wanted = spec[0] if isinstance(spec, list) and spec and isinstance(spec[0], str) else None
    given = outputs[link[1]]
    if wanted is None or not isinstance(given, str) or "*" in (wanted, given) or wanted == "COMBO":
        return None
    if given not in wanted.split(","):
        return f"expects {wanted} but output {link[1]} of node {source_id} ({source_class}) is {given}"
    return None


def _node_problems(graph: dict[str, Any], info: dict[str, Any], node_id: str) -> list[str]:
    node = graph[node_id]
    class_type = node["class_type"]
    if class_type not in info:
        return [f"node {node_id}: ComfyUI has no node type '{class_type}'{suggest(class_type, list(info))}"]
    declared = info[class_type].get("input") or {}
    required = declared.get("required") or {}
    specs = {**(declared.get("optional") or {}), **required}
    where = f"node {node_id} ({class_type})"
    problems = [f"{where}: required input '{name}' is missing" for name in required if name not in node["inputs"]]
    for name, value in node["inputs"].items():
        if name not in specs or (title(node), name) in INJECTED:
            continue
        problem = (
            _link_problem(graph, info, value, specs[name])
            if is_link(value) and str(value[0]) in graph
            else _literal_problem(value, specs[name])
        )
        if problem is not None:
            problems.append(f"{where}: {name} {problem}")
    return problems


def _output_problems(graph: dict[str, Any], info: dict[str, Any]) -> list[str]:
    outputs = sorted(i for i, n in graph.items() if (info.get(n["class_type"]) or {}).get("output_node"))
    marked = sorted(i for i, n in graph.items() if title(n) in ("alpha:output", "alpha:blended"))
    if outputs == marked:
        return []
    if not outputs:
        return [
            "no node saves an image (ComfyUI runs nothing without an output node); put alpha:output on a SaveImage node"
        ]
    names = ", ".join(f"{i} ({graph[i]['class_type']})" for i in outputs)
    return [
        f"the output nodes are {names}; exactly one, the alpha:output node, may save the result "
        "(and alpha:blended the blended picture)"
    ]


def problems(
    graph: dict[str, Any], info: dict[str, Any], list_models: ModelLister, lock_path: Path = LOCK
) -> list[str]:
    """Every rule this (offline-valid) workflow breaks on this ComfyUI; ``info`` is its /object_info."""
    found = [p for node_id in graph for p in _node_problems(graph, info, node_id)]
    found += _output_problems(graph, info)
    for folder, names in sorted(required_model_files(graph, lock_path).items()):
        present = set(list_models(folder) or [])
        found += [f"model file {folder}/{name} is missing" for name in sorted(names - present)]
    return found


class ComfyFacts:
    """What the online workflow rules read from a ComfyUI: /object_info once, each model folder once."""

    def __init__(self, client: ComfyClient, deadline: Deadline) -> None:
        self.client, self.deadline = client, deadline
        self.info = client.all_object_info(deadline)
        self._models: dict[str, list[str] | None] = {}

    def models(self, folder: str) -> list[str] | None:
        if folder not in self._models:
            self._models[folder] = self.client.model_files(folder, self.deadline)
        return self._models[folder]

    def problems(self, graph: dict[str, Any]) -> list[str]:
        return problems(graph, self.info, self.models)
