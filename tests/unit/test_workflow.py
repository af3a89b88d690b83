"""Workflow loading and markers: pure, no server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handler.errors import WorkflowError
from handler.paths import REPO
from handler.workflow.graph import REQUIRED_MARKERS, Workflow

PRODUCTION = REPO / "workflows" / "alpha_txt2img.json"


def graph() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PRODUCTION.read_text())
    return data


def load(tmp_path: Path, data: Any) -> Workflow:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(data))
    return Workflow.load(path)


def node_with(data: dict[str, Any], marker: str) -> str:
    return next(k for k, v in data.items() if v.get("_meta", {}).get("title") == marker)


def test_production_workflow_settings() -> None:
    wf = Workflow.load(PRODUCTION)
    g = wf.graph
    assert set(REQUIRED_MARKERS) <= set(wf.markers)
    by_type = {node["class_type"]: node["inputs"] for node in g.values()}
    assert by_type["CheckpointLoaderSimple"]["ckpt_name"].startswith("juggernautXL")
    assert by_type["LayeredDiffusionApply"]["config"] == "SDXL, Attention Injection"
    assert by_type["LayeredDiffusionApply"]["weight"] == 1.0
    assert (
        by_type["KSampler"].items()
        >= {"steps": 20, "cfg": 5.0, "sampler_name": "dpmpp_2m_sde", "scheduler": "karras"}.items()
    )
    assert wf.defaults["width"] == wf.defaults["height"] == 1024
    assert by_type["LayeredDiffusionDecodeRGBA"]["sd_version"] == "SDXL"
    assert g[wf.node("alpha:output")]["class_type"] == "SaveImage"
    assert len(wf.sha256) == 64


def test_apply_injects_and_leaves_the_frozen_graph_alone() -> None:
    wf = Workflow.load(PRODUCTION)
    before = copy.deepcopy(wf.graph)
    out = wf.apply(
        prompt="a cat", negative_prompt="dogs", seed=42, width=832, height=1216, filename_prefix="alpha_x", steps=3
    )
    assert wf.graph == before
    assert out[wf.node("alpha:prompt")]["inputs"]["text"] == "a cat"
    assert out[wf.node("alpha:negative_prompt")]["inputs"]["text"] == "dogs"
    assert out[wf.node("alpha:sampler")]["inputs"]["seed"] == 42
    assert out[wf.node("alpha:sampler")]["inputs"]["steps"] == 3
    assert out[wf.node("alpha:latent")]["inputs"].items() >= {"width": 832, "height": 1216}.items()
    assert out[wf.node("alpha:output")]["inputs"]["filename_prefix"] == "alpha_x"


def test_apply_keeps_defaults_when_not_given() -> None:
    wf = Workflow.load(PRODUCTION)
    out = wf.apply(prompt="a", negative_prompt=None, seed=1, width=1024, height=1024, filename_prefix="p")
    assert out[wf.node("alpha:negative_prompt")]["inputs"]["text"] == wf.defaults["negative_prompt"]
    assert out[wf.node("alpha:sampler")]["inputs"]["steps"] == 20


def test_markers_not_node_ids(tmp_path: Path) -> None:
    """Renumbering every node (as a re-export does) changes nothing."""
    data = graph()
    renumber = {old: str(100 + i) for i, old in enumerate(data)}

    def relink(value: Any) -> Any:
        return [renumber[value[0]], value[1]] if isinstance(value, list) else value

    moved = {renumber[k]: {**v, "inputs": {n: relink(x) for n, x in v["inputs"].items()}} for k, v in data.items()}
    wf = load(tmp_path, moved)
    out = wf.apply(prompt="hello", negative_prompt=None, seed=5, width=1024, height=1024, filename_prefix="p")
    assert out[wf.node("alpha:prompt")]["inputs"]["text"] == "hello"
    assert wf.node("alpha:prompt") == renumber[node_with(data, "alpha:prompt")]


def test_ui_format_is_refused_with_export_hint(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match=r"UI\) format.*Export \(API\)"):
        load(tmp_path, {"last_node_id": 9, "nodes": [], "links": [], "version": 0.4})


@pytest.mark.parametrize("marker", list(REQUIRED_MARKERS))
def test_missing_marker(tmp_path: Path, marker: str) -> None:
    data = graph()
    data[node_with(data, marker)]["_meta"]["title"] = "renamed"
    with pytest.raises(WorkflowError, match=rf"missing marker.*{marker}") as caught:
        load(tmp_path, data)
    assert caught.value.code == "invalid_workflow"


def test_duplicate_marker(tmp_path: Path) -> None:
    data = graph()
    data[node_with(data, "alpha:negative_prompt")]["_meta"]["title"] = "alpha:prompt"
    with pytest.raises(WorkflowError, match=r"'alpha:prompt' is on nodes .*exactly one"):
        load(tmp_path, data)


def test_unknown_marker(tmp_path: Path) -> None:
    data = graph()
    data[node_with(data, "alpha:prompt")]["_meta"]["title"] = "alpha:promt"
    with pytest.raises(WorkflowError, match="unknown marker 'alpha:promt'"):
        load(tmp_path, data)


def test_marker_input_must_be_literal(tmp_path: Path) -> None:
    data = graph()
    data[node_with(data, "alpha:sampler")]["inputs"]["seed"] = ["1", 0]
    with pytest.raises(WorkflowError, match="literal 'seed'"):
        load(tmp_path, data)


@pytest.mark.parametrize("content", ["{not json", "[]", "{}", '{"1": {"inputs": {}}}'])
def test_not_an_api_workflow(tmp_path: Path, content: str) -> None:
    path = tmp_path / "wf.json"
    path.write_text(content)
    with pytest.raises(WorkflowError):
        Workflow.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="cannot read workflow"):
        Workflow.load(tmp_path / "nope.json")


def test_with_input_makes_a_variant() -> None:
    wf = Workflow.load(PRODUCTION)
    off = wf.with_input("alpha:layer_diffuse", "weight", 0.0)
    assert off.graph[off.node("alpha:layer_diffuse")]["inputs"]["weight"] == 0.0
    assert wf.graph[wf.node("alpha:layer_diffuse")]["inputs"]["weight"] == 1.0
    assert off.markers == wf.markers and off.sha256 == wf.sha256
