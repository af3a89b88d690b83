"""Broken workflows, each one mutation of the production workflow, with the validator's message for it.
``OFFLINE`` ones are caught without ComfyUI; ``ONLINE`` ones need its /object_info (or its model folders)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler.paths import REPO

PRODUCTION = REPO / "workflows" / "alpha_txt2img.json"
Graph = dict[str, Any]


def production() -> Graph:
    graph: Graph = json.loads(PRODUCTION.read_text())
    return graph


def by_title(graph: Graph, title: str) -> str:
    return next(i for i, n in graph.items() if n.get("_meta", {}).get("title") == title)


def by_class(graph: Graph, class_type: str) -> str:
    return next(i for i, n in graph.items() if n["class_type"] == class_type)


def _ui_format(g: Graph) -> Any:
    return {"last_node_id": 9, "last_link_id": 9, "nodes": [{"id": 1, "type": "KSampler"}], "links": [], "version": 0.4}


def _retitle(title: str, new: str) -> Callable[[Graph], Graph]:
    def mutate(g: Graph) -> Graph:
        g[by_title(g, title)]["_meta"]["title"] = new
        return g

    return mutate


def _set(find: Callable[[Graph], str], name: str, value: Any) -> Callable[[Graph], Graph]:
    def mutate(g: Graph) -> Graph:
        g[find(g)]["inputs"][name] = value
        return g

    return mutate


def _delete_input(find: Callable[[Graph], str], name: str) -> Callable[[Graph], Graph]:
    def mutate(g: Graph) -> Graph:
        del g[find(g)]["inputs"][name]
        return g

    return mutate


def _second_output(g: Graph) -> Graph:
    g["99"] = copy.deepcopy(g[by_title(g, "alpha:output")])
    g["99"]["_meta"]["title"] = "Save Image"
    return g


def _no_output(g: Graph) -> Graph:
    save = by_title(g, "alpha:output")
    del g[save]
    decode = by_class(g, "LayeredDiffusionDecodeRGBA")
    g[decode]["_meta"]["title"] = "alpha:output"
    g[decode]["inputs"]["filename_prefix"] = "alpha"
    return g


def _output_not_rgba(g: Graph) -> Graph:
    g[by_title(g, "alpha:output")]["inputs"]["images"] = [by_class(g, "VAEDecode"), 0]
    return g


def _sizes(value: Any) -> Callable[[Graph], Graph]:
    def mutate(g: Graph) -> Graph:
        g[by_title(g, "alpha:latent")]["_meta"]["alpha_sizes"] = value
        return g

    return mutate


def _preview_output(g: Graph) -> Graph:
    g["99"] = {
        "class_type": "PreviewAny",
        "inputs": {"source": [by_class(g, "KSampler"), 0]},
        "_meta": {"title": "debug"},
    }
    return g


def sampler(g: Graph) -> str:
    return by_title(g, "alpha:sampler")


def latent(g: Graph) -> str:
    return by_title(g, "alpha:latent")


def loader(g: Graph) -> str:
    return by_class(g, "CheckpointLoaderSimple")


def layer_diffuse(g: Graph) -> str:
    return by_title(g, "alpha:layer_diffuse")


def decoder(g: Graph) -> str:
    return by_class(g, "LayeredDiffusionDecodeRGBA")


# name -> (mutation, words of the validator's message)
OFFLINE: dict[str, tuple[Callable[[Graph], Any], str]] = {
    "ui_format": (
        _ui_format,
        "is in the editor (UI) format, not the API format; in the ComfyUI editor use Workflow > Export (API)",
    ),
    "marker_missing": (_retitle("alpha:prompt", "Prompt"), "missing marker(s) alpha:prompt"),
    "marker_duplicated": (
        _retitle("alpha:negative_prompt", "alpha:prompt"),
        "marker 'alpha:prompt' is on nodes 3, 4; it must be on exactly one node",
    ),
    "marker_unknown": (_retitle("alpha:prompt", "alpha:promt"), "unknown marker 'alpha:promt' on node 3"),
    "marker_input_linked": (_set(sampler, "seed", ["1", 0]), "node 6 marked 'alpha:sampler' needs a literal 'seed'"),
    "dangling_link": (_set(sampler, "model", ["42", 0]), "node 6 input 'model' links to node 42, which does not exist"),
    "malformed_link": (_set(sampler, "positive", ["3", -1]), "node 6 input 'positive' is a malformed link ['3', -1]"),
    "width_1000": (_set(latent, "width", 1000), "node 5 (alpha:latent) width is 1000; it must be a multiple of 64"),
    "declared_size_not_64": (_sizes(["1024x1024", "1000x1000"]), "alpha_sizes: 1000x1000 is not a multiple of 64"),
    "declared_sizes_miss_default": (_sizes(["832x1216"]), "alpha_sizes does not include the node's own size 1024x1024"),
    "declared_size_garbled": (_sizes(["1024x1024", "big"]), "alpha_sizes: 'big' is not \"WxH\""),
    "two_outputs": (_second_output, "more than one image output: nodes 99 (SaveImage) besides alpha:output (node 9)"),
    "no_output": (
        _no_output,
        "no image output: alpha:output is on node 8 (LayeredDiffusionDecodeRGBA), which does not save an image",
    ),
    "output_not_rgba": (_output_not_rgba, "comes from node 7 (VAEDecode), which gives no alpha channel"),
}

ONLINE: dict[str, tuple[Callable[[Graph], Any], str]] = {
    "unknown_node": (
        lambda g: (g[sampler(g)].update(class_type="KSamplr"), g)[1],
        "node 6: ComfyUI has no node type 'KSamplr'; did you mean 'KSampler'?",
    ),
    "bad_sampler": (
        _set(sampler, "sampler_name", "dpmpp_2m_sdee"),
        "node 6 (KSampler): sampler_name 'dpmpp_2m_sdee' is not available in ComfyUI; did you mean 'dpmpp_2m_sde'?",
    ),
    "missing_checkpoint": (
        _set(loader, "ckpt_name", "juggernautXL_v9.safetensors"),
        "node 1 (CheckpointLoaderSimple): ckpt_name 'juggernautXL_v9.safetensors' is not available "
        "in ComfyUI (is the model file missing?)",
    ),
    "wrong_output_index": (
        _set(sampler, "positive", ["3", 2]),
        "node 6 (KSampler): positive links to output 2 of node 3 (CLIPTextEncode), which has 1 output(s)",
    ),
    "wrong_link_type": (
        _set(sampler, "model", ["1", 1]),
        "node 6 (KSampler): model expects MODEL but output 1 of node 1 (CheckpointLoaderSimple) is CLIP",
    ),
    "required_input_missing": (_delete_input(sampler, "cfg"), "node 6 (KSampler): required input 'cfg' is missing"),
    "wrong_type": (_set(sampler, "steps", "20"), "node 6 (KSampler): steps '20' is not a valid INT"),
    "out_of_range": (_set(sampler, "cfg", 500.0), "node 6 (KSampler): cfg 500.0 is outside 0.0..100.0"),
    "bad_layer_diffuse_config": (
        _set(layer_diffuse, "config", "SDXL, Atention Injection"),
        "config 'SDXL, Atention Injection' is not available in ComfyUI; did you mean 'SDXL, Attention Injection'?",
    ),
    "missing_layer_model_file": (
        _set(decoder, "sd_version", "SD15"),
        "model file layer_model/layer_sd15_vae_transparent_decoder.safetensors is missing",
    ),
    "extra_output_node": (_preview_output, "the output nodes are 9 (SaveImage), 99 (PreviewAny); exactly one"),
}


def write(tmp: Path, name: str, mutation: Callable[[Graph], Any]) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(mutation(production())))
    return path
