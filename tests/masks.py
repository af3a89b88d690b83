"""Workflows whose alpha is known exactly: the production workflow, but the saved image is the plain VAE decode
joined with a drawn mask instead of LayerDiffuse's alpha. They run on the real ComfyUI and keep the workflow's
contract (the saved image comes from JoinImageWithAlpha); tests use them to force a flat alpha, or a subject in a
known box, which random-weight models never draw."""

from __future__ import annotations

import copy

from handler.png import Box
from handler.settings import Settings
from handler.workflow.graph import Workflow


def masked(settings: Settings, *, opaque: bool, patch: Box | None = None) -> Workflow:
    """Alpha 255 everywhere (``opaque``) or 0 everywhere, except ``patch``, which has the other value. The canvas is
    the size a 1024x1024 request runs at in test mode (``settings.test_size``)."""
    production = Workflow.load(settings.workflow)
    graph = copy.deepcopy(production.graph)
    output = production.node("alpha:output")
    decode = next(i for i, n in graph.items() if n["class_type"] == "VAEDecode")
    del graph[graph[output]["inputs"]["images"][0]]  # LayerDiffuse's RGBA decode
    size = settings.test_size
    # JoinImageWithAlpha inverts the mask: mask 0.0 is alpha 255 (keep), 1.0 is alpha 0.
    graph["900"] = {
        "class_type": "SolidMask",
        "inputs": {"value": 0.0 if opaque else 1.0, "width": size, "height": size},
        "_meta": {"title": "base"},
    }
    mask = ["900", 0]
    if patch is not None:
        left, top, right, bottom = patch
        graph["901"] = {
            "class_type": "SolidMask",
            "inputs": {"value": 1.0, "width": right - left, "height": bottom - top},
            "_meta": {"title": "patch"},
        }
        graph["902"] = {
            "class_type": "MaskComposite",
            "inputs": {
                "destination": ["900", 0],
                "source": ["901", 0],
                "x": left,
                "y": top,
                "operation": "add" if opaque else "subtract",
            },
            "_meta": {"title": "base with the patch"},
        }
        mask = ["902", 0]
    graph["903"] = {
        "class_type": "JoinImageWithAlpha",
        "inputs": {"image": [decode, 0], "alpha": mask},
        "_meta": {"title": "join"},
    }
    graph[output]["inputs"]["images"] = ["903", 0]
    name = f"{'opaque' if opaque else 'transparent'}_{'-'.join(map(str, patch or ()))}"
    return Workflow.from_graph(graph, name=name, sha256=production.sha256)
