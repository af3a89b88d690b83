"""API-format workflows: load, check markers, and apply a request (pure, no server).

Injection points are found by markers in ``_meta.title``, never by node id, so
ops can re-export a workflow from the ComfyUI editor without touching code.
Each marker must appear exactly once:

===========================  ====================  =========================================
marker                       inputs it needs       what the handler does
===========================  ====================  =========================================
``alpha:prompt``             ``text``              sets the prompt
``alpha:negative_prompt``    ``text``              sets the negative prompt (its value is
                                                   the default)
``alpha:sampler``            ``seed``, ``steps``   sets the seed (steps only in test mode)
``alpha:latent``             ``width``, ``height`` sets the size (its value is the default)
``alpha:output``             ``filename_prefix``   sets a unique prefix; its image is the
                                                   job's result
===========================  ====================  =========================================

The optional marker ``alpha:layer_diffuse`` names the LayerDiffuse apply node.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handler.errors import WorkflowError

REQUIRED_MARKERS: dict[str, tuple[str, ...]] = {
    "alpha:prompt": ("text",),
    "alpha:negative_prompt": ("text",),
    "alpha:sampler": ("seed", "steps"),
    "alpha:latent": ("width", "height"),
    "alpha:output": ("filename_prefix",),
}
OPTIONAL_MARKERS: dict[str, tuple[str, ...]] = {"alpha:layer_diffuse": ("weight",)}
MARKER_PREFIX = "alpha:"
EXPORT_HINT = ("in the ComfyUI editor use Workflow > Export (API) (\"Save (API Format)\" in older "
               "versions), then set the marker titles")


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


@dataclass(frozen=True)
class Workflow:
    name: str
    sha256: str
    graph: dict[str, Any]
    markers: dict[str, str]  # marker -> node id
    defaults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Workflow:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise WorkflowError(f"cannot read workflow {path}: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WorkflowError(f"{path.name} is not valid JSON: {exc}") from None
        return cls.from_graph(data, name=path.stem, sha256=hashlib.sha256(raw).hexdigest())

    @classmethod
    def from_graph(cls, data: Any, *, name: str, sha256: str) -> Workflow:
        if isinstance(data, dict) and "nodes" in data and "links" in data:
            raise WorkflowError(f"{name} is in the editor (UI) format, not the API format; {EXPORT_HINT}")
        if not isinstance(data, dict) or not data:
            raise WorkflowError(f"{name} must be a JSON object of nodes in the API format; {EXPORT_HINT}")
        for node_id, node in data.items():
            if not (isinstance(node, dict) and isinstance(node.get("class_type"), str)
                    and isinstance(node.get("inputs"), dict)):
                raise WorkflowError(f"{name}: node {node_id} has no class_type/inputs; is this the API format? "
                                    f"{EXPORT_HINT}")
        markers = cls._find_markers(data, name)
        defaults = {
            "negative_prompt": data[markers["alpha:negative_prompt"]]["inputs"]["text"],
            "width": data[markers["alpha:latent"]]["inputs"]["width"],
            "height": data[markers["alpha:latent"]]["inputs"]["height"],
        }
        return cls(name=name, sha256=sha256, graph=data, markers=markers, defaults=defaults)

    @staticmethod
    def _find_markers(graph: dict[str, Any], name: str) -> dict[str, str]:
        found: dict[str, list[str]] = {}
        for node_id, node in graph.items():
            title = node.get("_meta", {}).get("title") if isinstance(node.get("_meta"), dict) else None
            if isinstance(title, str) and title.strip().startswith(MARKER_PREFIX):
                found.setdefault(title.strip(), []).append(node_id)
        known = REQUIRED_MARKERS | OPTIONAL_MARKERS
        for marker, ids in found.items():
            if marker not in known:
                raise WorkflowError(f"{name}: unknown marker '{marker}' on node {ids[0]}; "
                                    f"known markers: {', '.join(known)}")
            if len(ids) > 1:
                raise WorkflowError(f"{name}: marker '{marker}' is on nodes {', '.join(ids)}; "
                                    "it must be on exactly one node")
        missing = [m for m in REQUIRED_MARKERS if m not in found]
        if missing:
            raise WorkflowError(f"{name}: missing marker(s) {', '.join(missing)}; set the node title "
                                f"(_meta.title) of the node to inject into, e.g. '{missing[0]}'")
        markers = {marker: ids[0] for marker, ids in found.items()}
        for marker, node_id in markers.items():
            inputs = graph[node_id]["inputs"]
            for key in known[marker]:
                if key not in inputs or _is_link(inputs[key]):
                    raise WorkflowError(f"{name}: node {node_id} marked '{marker}' needs a literal "
                                        f"'{key}' input")
        return markers

    def node(self, marker: str) -> str:
        return self.markers[marker]

    def with_input(self, marker: str, name: str, value: Any) -> Workflow:
        """A variant with one input of a marked node changed (ablations, benchmarks)."""
        graph = copy.deepcopy(self.graph)
        graph[self.markers[marker]]["inputs"][name] = value
        return Workflow.from_graph(graph, name=f"{self.name}[{name}={value}]", sha256=self.sha256)

    def apply(self, *, prompt: str, negative_prompt: str | None, seed: int, width: int, height: int,
              filename_prefix: str, steps: int | None = None) -> dict[str, Any]:
        """A copy of the graph with this job's values injected."""
        graph = copy.deepcopy(self.graph)

        def inputs(marker: str) -> dict[str, Any]:
            result: dict[str, Any] = graph[self.markers[marker]]["inputs"]
            return result

        inputs("alpha:prompt")["text"] = prompt
        if negative_prompt is not None:
            inputs("alpha:negative_prompt")["text"] = negative_prompt
        inputs("alpha:sampler")["seed"] = seed
        if steps is not None:
            inputs("alpha:sampler")["steps"] = steps
        inputs("alpha:latent").update(width=width, height=height)
        inputs("alpha:output")["filename_prefix"] = filename_prefix
        return graph
