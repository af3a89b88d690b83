"""``model_files`` in custom_nodes/lock.json: the file each LayerDiffuse node loads for a ``config`` value, checked
against the pinned layered_diffusion.py (read with ``ast``, not imported), and the online workflow check that
reports a missing one."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest

from handler.settings import Settings
from handler.workflow import online

LOCK = json.loads(online.LOCK.read_text())
SPEC = LOCK["nodes"][0]["model_files"]


def enum_values(tree: ast.Module) -> dict[str, str]:
    """``Class.MEMBER`` -> value for the string enums a module defines."""
    values: dict[str, str] = {}
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        for item in cls.body:
            if isinstance(item, ast.Assign) and isinstance(item.value, ast.Constant):
                for target in item.targets:
                    if isinstance(target, ast.Name):
                        values[f"{cls.name}.{target.id}"] = str(item.value.value)
    return values


def config_string(fields: dict[str, Any]) -> str:
    """LayeredDiffusionBase.config_string, from the constructor's literal arguments."""
    frames = fields.get("frames", 1)
    parts = (
        fields["sd_version"],
        fields.get("injection_method", ""),
        fields.get("cond_type", ""),
        "attn_sharing" if fields.get("attn_sharing") else "",
        f"Batch size ({frames}N)" if frames != 1 else "",
    )
    return ", ".join(part for part in parts if part)


def literal(node: ast.expr, enums: dict[str, str]) -> Any:
    return enums[ast.unparse(node)] if isinstance(node, ast.Attribute) else ast.literal_eval(node)


def declared(tree: ast.Module, enums: dict[str, str]) -> dict[str, dict[str, str]]:
    """Node name (NODE_CLASS_MAPPINGS) -> {config: file name} from its class's MODELS."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    [mapping] = [
        n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n).startswith("NODE_CLASS_MAPPINGS =")
    ]
    assert isinstance(mapping, ast.Dict)
    found: dict[str, dict[str, str]] = {}
    for key, value in zip(mapping.keys, mapping.values, strict=True):
        assert isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(value, ast.Name)
        for item in classes[value.id].body:
            if isinstance(item, ast.Assign) and ast.unparse(item.targets[0]) == "MODELS":
                for call in ast.walk(item.value):
                    if isinstance(call, ast.Call):
                        fields = {str(kw.arg): literal(kw.value, enums) for kw in call.keywords}
                        found.setdefault(key.value, {})[config_string(fields)] = fields["model_file_name"]
    return found


@pytest.fixture(scope="module")
def upstream() -> dict[str, dict[str, str]]:
    folder = Settings.from_env().comfyui_dir / "custom_nodes" / "ComfyUI-layerdiffuse"
    if not folder.is_dir():
        pytest.fail(f"no ComfyUI-layerdiffuse at {folder}: run scripts/setup.sh")
    tree = ast.parse((folder / "layered_diffusion.py").read_text())
    enums = enum_values(tree) | enum_values(ast.parse((folder / "lib_layerdiffusion" / "enums.py").read_text()))
    return declared(tree, enums)


def test_every_config_the_lock_maps_loads_that_file_upstream(upstream: dict[str, dict[str, str]]) -> None:
    configs = {node: inputs["config"] for node, inputs in SPEC["nodes"].items() if "config" in inputs}
    assert set(configs) == {"LayeredDiffusionApply", "LayeredDiffusionCondApply", "LayeredDiffusionDiffApply"}
    for node, files in configs.items():
        assert files.items() <= upstream[node].items(), node


def test_the_layer_mode_nodes_are_mapped_whole(upstream: dict[str, dict[str, str]]) -> None:
    for node in ("LayeredDiffusionCondApply", "LayeredDiffusionDiffApply"):
        assert SPEC["nodes"][node]["config"] == upstream[node]
    assert upstream["LayeredDiffusionCondApply"] == {
        "SDXL, Foreground": "layer_xl_fg2ble.safetensors",
        "SDXL, Background": "layer_xl_bg2ble.safetensors",
    }
    assert upstream["LayeredDiffusionDiffApply"] == {
        "SDXL, Foreground": "layer_xl_fgble2bg.safetensors",
        "SDXL, Background": "layer_xl_bgble2fg.safetensors",
    }


def layer_graph(config: str) -> dict[str, Any]:
    """A layer mode's two apply nodes (other inputs left out: only the config names a file)."""
    return {
        "1": {"class_type": "LayeredDiffusionCondApply", "inputs": {"config": config, "weight": 1.0}},
        "2": {"class_type": "LayeredDiffusionDiffApply", "inputs": {"config": config, "weight": 1.0}},
    }


@pytest.mark.parametrize(
    ("config", "files"),
    [
        ("SDXL, Background", {"layer_xl_bg2ble.safetensors", "layer_xl_bgble2fg.safetensors"}),  # foreground mode
        ("SDXL, Foreground", {"layer_xl_fg2ble.safetensors", "layer_xl_fgble2bg.safetensors"}),  # background mode
    ],
)
def test_a_layer_mode_needs_its_two_files(config: str, files: set[str]) -> None:
    assert online.required_model_files(layer_graph(config)) == {"layer_model": files}


def test_the_online_check_reports_a_missing_layer_file() -> None:
    graph = layer_graph("SDXL, Background")
    info = {node["class_type"]: {"input": {}, "output": ["MODEL"]} for node in graph.values()}
    present = {"layer_model": ["layer_xl_bg2ble.safetensors"]}
    found = online.problems(graph, info, present.get)
    assert found == ["model file layer_model/layer_xl_bgble2fg.safetensors is missing"]
    present["layer_model"].append("layer_xl_bgble2fg.safetensors")
    assert online.problems(graph, info, present.get) == []
