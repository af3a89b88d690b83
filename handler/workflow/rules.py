"""The workflow contract, offline: every rule an API-format workflow must meet before it reaches ComfyUI.

``problems(data, name)`` lists every broken rule (the validator prints them all); ``Workflow.from_graph``
refuses a workflow on the first. The rules that need a running ComfyUI (node types, input types, option
values, model files) are in ``handler.workflow.online``.

Markers are node titles (``_meta.title``), each on exactly one node:

=========================  =====================  ===========================================
marker                     literal inputs         what the handler does
=========================  =====================  ===========================================
``alpha:prompt``           ``text``               sets the prompt
``alpha:negative_prompt``  ``text``               sets the negative prompt; its text is the default
``alpha:sampler``          ``seed``, ``steps``    sets the seed (steps only in test mode and warm-up)
``alpha:latent``           ``width``, ``height``  sets the size; its size is the default
``alpha:output``           ``filename_prefix``    sets a unique prefix; its one image is the result
``alpha:layer_diffuse``    ``weight``             optional; marks the LayerDiffuse node (ablations)
``alpha:background``       ``image``              a LoadImage: the job's background (mode ``foreground``)
``alpha:foreground``       ``image``              a LoadImage: the job's foreground (mode ``background``)
``alpha:blend_sampler``    ``seed``, ``steps``    optional; a first pass, seeded like ``alpha:sampler``
``alpha:blended``          ``filename_prefix``    with an image marker; saves the blended picture
=========================  =====================  ===========================================

A workflow's mode follows from its image marker: none is ``text``, ``alpha:background`` is ``foreground`` (it
takes a background and saves a transparent foreground), ``alpha:foreground`` is ``background`` (it takes a
foreground and saves an opaque background). A layer workflow also saves the blended picture (``alpha:blended``).

Allowed sizes: ``_meta.alpha_sizes`` on the ``alpha:latent`` node, a list of ``"WxH"`` strings, each a
multiple of 64 and including the node's own size. Without it only the node's own size is allowed.
"""

from __future__ import annotations

import re
from typing import Any

from handler.request import MODE_IMAGES

REQUIRED_MARKERS: dict[str, tuple[str, ...]] = {
    "alpha:prompt": ("text",),
    "alpha:negative_prompt": ("text",),
    "alpha:sampler": ("seed", "steps"),
    "alpha:latent": ("width", "height"),
    "alpha:output": ("filename_prefix",),
}
OPTIONAL_MARKERS: dict[str, tuple[str, ...]] = {
    "alpha:layer_diffuse": ("weight",),
    "alpha:background": ("image",),
    "alpha:foreground": ("image",),
    "alpha:blend_sampler": ("seed", "steps"),
    "alpha:blended": ("filename_prefix",),
}
KNOWN_MARKERS = REQUIRED_MARKERS | OPTIONAL_MARKERS
# A layer mode's image input is marked ``alpha:<image>`` (MODE_IMAGES: mode -> the image it takes).
OPAQUE_MODES = frozenset({"background"})  # the main image is opaque: no alpha channel to check
# Nodes an image marker may be on: the handler sets their ``image`` to the uploaded file.
IMAGE_INPUT_NODES = frozenset({"LoadImage"})
MARKER_PREFIX = "alpha:"
SIZES_KEY = "alpha_sizes"
EXPORT_HINT = (
    'in the ComfyUI editor use Workflow > Export (API) ("Save (API Format)" in older '
    "versions), then set the marker titles"
)
# Nodes that save an image: the result must come from exactly one, the alpha:output node. The online check
# asks ComfyUI (output_node); offline these are the ones a txt2img workflow uses.
IMAGE_OUTPUT_NODES = frozenset(
    {"SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveImageWebsocket"}
)
# Nodes whose image output (index 0) carries an alpha channel.
RGBA_NODES = frozenset({"LayeredDiffusionDecodeRGBA", "JoinImageWithAlpha"})
SIZE = re.compile(r"(\d+)x(\d+)")


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int)


def title(node: dict[str, Any]) -> str | None:
    meta = node.get("_meta")
    value = meta.get("title") if isinstance(meta, dict) else None
    return value.strip() if isinstance(value, str) else None


def find_markers(graph: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for node_id, node in graph.items():
        name = title(node)
        if name is not None and name.startswith(MARKER_PREFIX):
            found.setdefault(name, []).append(node_id)
    return found


def mode_of(markers: dict[str, list[str]] | dict[str, str]) -> str:
    """The workflow's mode, from its image marker (the first one, if a broken workflow has two)."""
    return next((mode for mode, image in MODE_IMAGES.items() if f"alpha:{image}" in markers), "text")


def shape_problems(data: Any, name: str) -> list[str]:
    """Is it an API-format graph at all? If not, nothing else can be checked."""
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        return [f"{name} is in the editor (UI) format, not the API format; {EXPORT_HINT}"]
    if not isinstance(data, dict) or not data:
        return [f"{name} must be a JSON object of nodes in the API format; {EXPORT_HINT}"]
    return [
        f"{name}: node {node_id} has no class_type/inputs; is this the API format? {EXPORT_HINT}"
        for node_id, node in data.items()
        if not (
            isinstance(node, dict) and isinstance(node.get("class_type"), str) and isinstance(node.get("inputs"), dict)
        )
    ]


def marker_problems(graph: dict[str, Any], name: str) -> list[str]:
    found, problems = find_markers(graph), []
    for marker, ids in found.items():
        if marker not in KNOWN_MARKERS:
            problems.append(
                f"{name}: unknown marker '{marker}' on node {ids[0]}; known markers: {', '.join(KNOWN_MARKERS)}"
            )
        elif len(ids) > 1:
            problems.append(f"{name}: marker '{marker}' is on nodes {', '.join(ids)}; it must be on exactly one node")
    missing = [m for m in REQUIRED_MARKERS if m not in found]
    if missing:
        problems.append(
            f"{name}: missing marker(s) {', '.join(missing)}; set the node title (_meta.title) of "
            f"the node to inject into, e.g. '{missing[0]}'"
        )
    for marker, ids in found.items():
        for key in KNOWN_MARKERS.get(marker, ()):
            inputs = graph[ids[0]]["inputs"]
            if key not in inputs or is_link(inputs[key]):
                problems.append(f"{name}: node {ids[0]} marked '{marker}' needs a literal '{key}' input")
    return problems


def mode_problems(graph: dict[str, Any], name: str) -> list[str]:
    """A layer workflow takes exactly one image, from a LoadImage node, and saves the blended picture too."""
    found = find_markers(graph)
    images = [f"alpha:{image}" for image in MODE_IMAGES.values() if f"alpha:{image}" in found]
    if len(images) > 1:
        return [f"{name}: markers {' and '.join(images)} are both set; a workflow takes one input image"]
    problems = []
    for marker in images:
        node_id = found[marker][0]
        if graph[node_id]["class_type"] not in IMAGE_INPUT_NODES:
            problems.append(
                f"{name}: {marker} is on node {node_id} ({graph[node_id]['class_type']}); put it on a LoadImage node"
            )
    if images and "alpha:blended" not in found:
        problems.append(f"{name}: {images[0]} needs an alpha:blended SaveImage node for the blended picture")
    if not images and "alpha:blended" in found:
        problems.append(f"{name}: alpha:blended needs an image marker (alpha:background or alpha:foreground)")
    return problems


def link_problems(graph: dict[str, Any], name: str) -> list[str]:
    problems = []
    for node_id, node in graph.items():
        for input_name, value in node["inputs"].items():
            if not isinstance(value, list) or not value or not isinstance(value[0], str | int):
                continue
            if len(value) != 2 or isinstance(value[1], bool) or not isinstance(value[1], int) or value[1] < 0:
                problems.append(
                    f"{name}: node {node_id} input '{input_name}' is a malformed link {value}; a link "
                    "is [node id, output index >= 0]"
                )
            elif str(value[0]) not in graph:
                problems.append(
                    f"{name}: node {node_id} input '{input_name}' links to node {value[0]}, which does not exist"
                )
    return problems


def declared_sizes(graph: dict[str, Any], latent_id: str) -> tuple[list[tuple[int, int]], list[str]]:
    """The sizes the latent node allows, and what is wrong with their declaration."""
    node = graph[latent_id]
    default = (node["inputs"].get("width"), node["inputs"].get("height"))
    meta = node.get("_meta") if isinstance(node.get("_meta"), dict) else {}
    raw = meta.get(SIZES_KEY)
    if raw is None:
        return ([default] if all(isinstance(v, int) for v in default) else []), []
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        return [], [f'node {latent_id} _meta.{SIZES_KEY} must be a non-empty list of "WxH" strings']
    sizes, problems = [], []
    for text in raw:
        match = SIZE.fullmatch(text.strip())
        if match is None:
            problems.append(f"node {latent_id} _meta.{SIZES_KEY}: '{text}' is not \"WxH\"")
            continue
        sizes.append((int(match[1]), int(match[2])))
    if default not in sizes and not problems:
        problems.append(
            f"node {latent_id} _meta.{SIZES_KEY} does not include the node's own size "
            f"{default[0]}x{default[1]}, the default"
        )
    return sizes, problems


def size_problems(graph: dict[str, Any], name: str, latent_id: str) -> list[str]:
    inputs = graph[latent_id]["inputs"]
    problems = []
    for key in ("width", "height"):
        value = inputs.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 64 or value % 64:
            problems.append(
                f"{name}: node {latent_id} (alpha:latent) {key} is {value!r}; it must be a multiple "
                "of 64 (LayerDiffuse's decoder needs it)"
            )
    sizes, declared = declared_sizes(graph, latent_id)
    problems += [f"{name}: {p}" for p in declared]
    problems += [
        f"{name}: node {latent_id} _meta.{SIZES_KEY}: {w}x{h} is not a multiple of 64"
        for w, h in sizes
        if w < 64 or h < 64 or w % 64 or h % 64
    ]
    return problems


def output_problems(graph: dict[str, Any], name: str, output_id: str) -> list[str]:
    markers = find_markers(graph)
    blended = markers.get("alpha:blended", [])[:1]
    savers = sorted(i for i, n in graph.items() if n["class_type"] in IMAGE_OUTPUT_NODES and i not in blended)
    node = graph[output_id]
    if node["class_type"] not in IMAGE_OUTPUT_NODES:
        return [
            f"{name}: no image output: alpha:output is on node {output_id} ({node['class_type']}), which does "
            "not save an image; put it on a SaveImage node"
        ]
    if savers != [output_id]:
        others = ", ".join(f"{i} ({graph[i]['class_type']})" for i in savers if i != output_id)
        return [
            f"{name}: more than one image output: nodes {others} besides alpha:output (node {output_id}); "
            "remove them, the job returns exactly one image (and the blended picture, alpha:blended)"
        ]
    for blended_id in blended:
        if graph[blended_id]["class_type"] not in IMAGE_OUTPUT_NODES:
            return [f"{name}: alpha:blended is on node {blended_id}, which does not save an image; use a SaveImage"]
    if mode_of(markers) in OPAQUE_MODES:
        return []  # the main image is the opaque background
    images = node["inputs"].get("images")
    if is_link(images) and str(images[0]) in graph:
        source = graph[str(images[0])]
        if source["class_type"] not in RGBA_NODES:
            return [
                f"{name}: the image saved by alpha:output (node {output_id}) comes from node {images[0]} "
                f"({source['class_type']}), which gives no alpha channel; route it through "
                "LayeredDiffusionDecodeRGBA"
            ]
    return []


def problems(data: Any, name: str) -> list[str]:
    """Every offline rule this workflow breaks; empty when it meets the contract."""
    found = shape_problems(data, name)
    if found:
        return found
    found = marker_problems(data, name) + mode_problems(data, name) + link_problems(data, name)
    markers = {m: ids[0] for m, ids in find_markers(data).items() if m in KNOWN_MARKERS and len(ids) == 1}
    if "alpha:latent" in markers:
        found += size_problems(data, name, markers["alpha:latent"])
    if "alpha:output" in markers:
        found += output_problems(data, name, markers["alpha:output"])
    return found
