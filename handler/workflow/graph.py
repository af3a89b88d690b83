"""API-format workflows: load, check against the contract, and apply a request (pure, no server).

Injection points are found by markers in ``_meta.title``, never by node id, so ops can re-export a
workflow from the ComfyUI editor without touching code. The contract (markers, sizes, outputs) is in
``handler.workflow.rules``; ``python -m handler.workflow check FILE... [--comfyui URL]`` checks files
against it, and against a running ComfyUI too.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handler.errors import WorkflowError
from handler.request import MODE_IMAGES
from handler.workflow.rules import (
    KNOWN_MARKERS,
    OPTIONAL_MARKERS,
    REQUIRED_MARKERS,
    declared_sizes,
    mode_of,
    problems,
    title,
)

__all__ = ["KNOWN_MARKERS", "OPTIONAL_MARKERS", "REQUIRED_MARKERS", "Workflow", "read"]


def read(path: Path) -> tuple[Any, str]:
    """The parsed JSON of a workflow file and the sha256 of its bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WorkflowError(f"cannot read workflow {path}: {exc.strerror}") from None
    try:
        return json.loads(raw), hashlib.sha256(raw).hexdigest()
    except (ValueError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"{path.name} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class Workflow:
    name: str
    sha256: str
    graph: dict[str, Any]
    markers: dict[str, str]  # marker -> node id
    defaults: dict[str, Any] = field(default_factory=dict)
    sizes: tuple[tuple[int, int], ...] = ()  # allowed (width, height), as declared

    @classmethod
    def load(cls, path: Path) -> Workflow:
        data, sha256 = read(path)
        return cls.from_graph(data, name=path.stem, sha256=sha256)

    @classmethod
    def from_graph(cls, data: Any, *, name: str, sha256: str) -> Workflow:
        """A checked workflow; WorkflowError names the first broken rule of the contract."""
        broken = problems(data, name)
        if broken:
            raise WorkflowError(
                broken[0]
                + (
                    f" (and {len(broken) - 1} more problem(s): run python -m handler.workflow check)"
                    if len(broken) > 1
                    else ""
                )
            )
        markers = {marker: node_id for node_id, node in data.items() if (marker := title(node)) in KNOWN_MARKERS}
        latent = data[markers["alpha:latent"]]["inputs"]
        sizes, _ = declared_sizes(data, markers["alpha:latent"])
        defaults = {
            "negative_prompt": data[markers["alpha:negative_prompt"]]["inputs"]["text"],
            "width": latent["width"],
            "height": latent["height"],
        }
        return cls(name=name, sha256=sha256, graph=data, markers=markers, defaults=defaults, sizes=tuple(sizes))

    def node(self, marker: str) -> str:
        return self.markers[marker]

    @property
    def mode(self) -> str:
        """``text``, or the layer mode its image marker makes it (``handler.workflow.rules``)."""
        return mode_of(self.markers)

    @property
    def image_input(self) -> str | None:
        """The input image this workflow takes (``background`` or ``foreground``), if any."""
        return MODE_IMAGES.get(self.mode)

    def with_input(self, marker: str, name: str, value: Any) -> Workflow:
        """A variant with one input of a marked node changed (ablations, benchmarks)."""
        graph = copy.deepcopy(self.graph)
        graph[self.markers[marker]]["inputs"][name] = value
        return Workflow.from_graph(graph, name=f"{self.name}[{name}={value}]", sha256=self.sha256)

    def apply(
        self,
        *,
        prompt: str,
        negative_prompt: str | None,
        seed: int,
        width: int,
        height: int,
        filename_prefix: str,
        steps: int | None = None,
        images: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A copy of the graph with this job's values injected; ``images`` names the uploaded input image
        (ComfyUI's input folder) by marker: ``{"alpha:background": "alpha_<key>_background.png"}``."""
        graph = copy.deepcopy(self.graph)

        def inputs(marker: str) -> dict[str, Any]:
            result: dict[str, Any] = graph[self.markers[marker]]["inputs"]
            return result

        inputs("alpha:prompt")["text"] = prompt
        if negative_prompt is not None:
            inputs("alpha:negative_prompt")["text"] = negative_prompt
        for sampler in ("alpha:sampler", "alpha:blend_sampler"):
            if sampler in self.markers:
                inputs(sampler)["seed"] = seed
                if steps is not None:
                    inputs(sampler)["steps"] = steps
        inputs("alpha:latent").update(width=width, height=height)
        inputs("alpha:output")["filename_prefix"] = filename_prefix
        if "alpha:blended" in self.markers:
            inputs("alpha:blended")["filename_prefix"] = f"{filename_prefix}_blended"
        for marker, filename in (images or {}).items():
            inputs(marker)["image"] = filename
        return graph
