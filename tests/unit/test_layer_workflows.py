"""The layer modes' workflow contract, offline: the shipped workflows, the rules on image markers and the
blended output, what ``apply`` injects, and the settings that pick (or turn off) each mode's workflow."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handler import layers
from handler.deadline import Deadline
from handler.errors import ModeUnavailable, WorkflowError
from handler.generate import Generator
from handler.paths import REPO
from handler.settings import Settings
from handler.workflow.graph import Workflow
from handler.workflow.rules import problems

FOREGROUND = REPO / "workflows" / "alpha_foreground.json"
BACKGROUND = REPO / "workflows" / "alpha_background.json"


def graph(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def by_title(data: dict[str, Any], title: str) -> str:
    return next(node_id for node_id, node in data.items() if node["_meta"]["title"] == title)


def test_the_shipped_layer_workflows() -> None:
    fg, bg = Workflow.load(FOREGROUND), Workflow.load(BACKGROUND)
    assert (fg.mode, fg.image_input, bg.mode, bg.image_input) == (
        "foreground",
        "background",
        "background",
        "foreground",
    )
    assert fg.sizes == bg.sizes == Workflow.load(Settings().workflow).sizes, "the production workflow's sizes"
    configs = {
        (node["class_type"], node["inputs"]["config"])
        for wf in (fg, bg)
        for node in wf.graph.values()
        if "config" in node["inputs"]
    }
    # LayerDiffuse's pairs: background -> blended -> foreground, and foreground -> blended -> background.
    assert configs == {
        ("LayeredDiffusionCondApply", "SDXL, Background"),
        ("LayeredDiffusionDiffApply", "SDXL, Background"),
        ("LayeredDiffusionCondApply", "SDXL, Foreground"),
        ("LayeredDiffusionDiffApply", "SDXL, Foreground"),
    }
    assert fg.graph[fg.graph[fg.node("alpha:output")]["inputs"]["images"][0]]["class_type"] == (
        "LayeredDiffusionDecodeRGBA"
    ), "the foreground is decoded with its alpha"
    assert bg.graph[bg.graph[bg.node("alpha:output")]["inputs"]["images"][0]]["class_type"] == "VAEDecode"


def test_apply_injects_the_image_and_seeds_both_passes() -> None:
    fg = Workflow.load(FOREGROUND)
    applied = fg.apply(
        prompt="p",
        negative_prompt=None,
        seed=5,
        width=1152,
        height=896,
        filename_prefix="alpha_k",
        steps=2,
        images={"alpha:background": "alpha_k_background.png"},
    )
    assert applied[fg.node("alpha:background")]["inputs"]["image"] == "alpha_k_background.png"
    for sampler in ("alpha:sampler", "alpha:blend_sampler"):
        assert applied[fg.node(sampler)]["inputs"]["seed"] == 5 and applied[fg.node(sampler)]["inputs"]["steps"] == 2
    assert applied[fg.node("alpha:blended")]["inputs"]["filename_prefix"] == "alpha_k_blended"
    assert fg.graph[fg.node("alpha:background")]["inputs"]["image"] == "background.png", "the file is untouched"


def broken(path: Path, change: Any) -> list[str]:
    data = copy.deepcopy(graph(path))
    change(data)
    return problems(data, "wf")


def test_two_image_markers_are_refused() -> None:
    def both(data: dict[str, Any]) -> None:
        data["99"] = {"class_type": "LoadImage", "inputs": {"image": "x.png"}, "_meta": {"title": "alpha:foreground"}}

    assert "markers alpha:background and alpha:foreground are both set" in " ".join(broken(FOREGROUND, both))


def test_an_image_marker_must_be_on_a_load_image() -> None:
    def moved(data: dict[str, Any]) -> None:
        data[by_title(data, "alpha:background")]["class_type"] = "LoadImageMask"

    assert "put it on a LoadImage node" in " ".join(broken(FOREGROUND, moved))


def test_a_layer_workflow_saves_the_blend_and_only_a_layer_workflow_does() -> None:
    def unmarked(data: dict[str, Any]) -> None:
        data[by_title(data, "alpha:blended")]["_meta"]["title"] = "Save"

    found = broken(BACKGROUND, unmarked)
    assert any("needs an alpha:blended SaveImage" in p for p in found), found

    def no_image(data: dict[str, Any]) -> None:
        data[by_title(data, "alpha:foreground")]["_meta"]["title"] = "Load"

    assert any("alpha:blended needs an image marker" in p for p in broken(BACKGROUND, no_image))


def test_a_foreground_must_come_out_of_the_rgba_decoder_and_a_background_need_not() -> None:
    def opaque(data: dict[str, Any]) -> None:
        data[by_title(data, "alpha:output")]["inputs"]["images"] = ["7", 0]  # the VAEDecode

    assert any("gives no alpha channel" in p for p in broken(FOREGROUND, opaque))
    assert problems(graph(BACKGROUND), "wf") == []


def test_a_layer_workflow_is_not_a_text_workflow_and_each_mode_takes_its_own() -> None:
    with pytest.raises(WorkflowError, match="takes an input image; set it as a layer mode's workflow"):
        Generator(Settings().replace(workflow=FOREGROUND))
    with pytest.raises(WorkflowError, match=r"ALPHA_FOREGROUND_WORKFLOW: alpha_background\.json is a 'background'"):
        Generator(Settings().replace(foreground_workflow=BACKGROUND))


def test_a_mode_turned_off_is_refused_without_asking_comfyui() -> None:
    settings = Settings().replace(foreground_workflow=None, comfyui_port=9)  # nothing listens on port 9
    modes = Generator(settings).modes
    assert set(modes.workflows) == {"background"}
    with pytest.raises(ModeUnavailable) as caught:
        modes.pick("foreground", Deadline(1))
    assert caught.value.field == "mode" and "ALPHA_FOREGROUND_WORKFLOW is empty" in caught.value.message


def test_a_recorded_problem_refuses_the_mode() -> None:
    modes = layers.Modes(layers.load({"background": BACKGROUND}), client=None)  # type: ignore[arg-type]
    modes.record("background", ["model file layer_model/layer_xl_fg2ble.safetensors is missing"])
    with pytest.raises(ModeUnavailable, match="cannot run on this worker: model file layer_model/layer_xl_fg2ble"):
        modes.pick("background", Deadline(1))


def test_the_largest_image_accepted_fits_through_both_doors() -> None:
    """An image at the byte limit, as base64 in a job, stays under RunPod's /run payload cap (10 MB) and the alpha
    API's default body limit, with room for the rest of the input."""
    from handler.image_input import MAX_BASE64_CHARS

    room = 64 * 1024
    assert MAX_BASE64_CHARS + room < 10_000_000
    assert MAX_BASE64_CHARS + room < Settings().serve_max_body_bytes
