"""What a job returns: the ``Result`` (the main image, the layer modes' other images, ``info``), and the checks and
conversions that make ComfyUI's saved PNGs into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from handler import asset as assets
from handler.comfyui.client import Completion
from handler.comfyui.outputs import Outputs
from handler.deadline import Deadline
from handler.png import AlphaStats, alpha_stats, check_alpha, decode
from handler.workflow.graph import Workflow


@dataclass(frozen=True)
class Layer:
    """An image a layer mode returns besides the main one (the blended picture), in the request's format."""

    image: bytes
    filename: str
    mime_type: str


@dataclass(frozen=True)
class Result:
    image: bytes  # PNG or WebP, as ``mime_type`` says
    filename: str
    info: dict[str, Any]
    mime_type: str = "image/png"
    layers: dict[str, Layer] = field(default_factory=dict)  # layer modes: {"blended": ...}


def canvas(image: Image.Image, *, opaque: bool, max_uniform: float) -> AlphaStats:
    """The main image's alpha figures: checked for real transparency, unless the mode's image is opaque."""
    if opaque:
        return alpha_stats(image)
    return check_alpha(image, max_uniform=max_uniform)


def blended(
    outputs: Outputs, workflow: Workflow, done: Completion, key: str, *, format: str, deadline: Deadline
) -> dict[str, Layer]:
    """A layer mode's blended picture, in the request's format (never trimmed: it is a whole picture)."""
    if "alpha:blended" not in workflow.markers:
        return {}
    png = outputs.fetch(workflow.node("alpha:blended"), done, deadline)
    image = decode(png, rgba=False)  # checked as the main image is: a readable PNG
    data = png if format == "png" else assets.encode(image, format)
    return {"blended": Layer(data, f"alpha_{key}_blended.{format}", assets.MIME_TYPES[format])}


def describe(
    workflow: Workflow, seed: int, size: tuple[int, int], prompt_id: str, asset: assets.Asset
) -> dict[str, Any]:
    """What the result says about the image: the job's figures, the asset's format, crop and alpha."""
    info: dict[str, Any] = {
        "seed": seed,
        "width": size[0],
        "height": size[1],
        "workflow": {"name": workflow.name, "sha256": workflow.sha256},
        "mode": workflow.mode,
        "prompt_id": prompt_id,
        "alpha": asset.alpha.as_dict(),
        "format": asset.format,
        "mime_type": asset.mime_type,
    }
    if asset.crop is not None:
        info["crop"] = list(asset.crop)
    return info
