"""LayerDiffuse really applies: an ablation on the real ComfyUI, and a control run without the fix pack.

With the fix pack, attention injection at weight 1 and weight 0 give different images for the
same seed, while weight 1 twice gives the same image, and ComfyUI logs no dropped patch.
Without it (ComfyUI started with only ComfyUI-layerdiffuse whitelisted) the same ablation gives
identical images and ComfyUI logs `patch type not recognized lora`, and the RGBA decode crashes:
so these tests fail if the fix stops working.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handler.deadline import Deadline
from handler.errors import ExecutionError
from handler.generate import Generator
from handler.paths import REPO
from handler.request import Request
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.conftest import running_comfy
from tests.helpers import RunningComfy, free_port, rgba

pytestmark = pytest.mark.comfyui
SEED = 20241126


def with_weight(settings: Settings, weight: float, workflow: Path | None = None) -> Workflow:
    return Workflow.load(workflow or settings.workflow).with_input("alpha:layer_diffuse", "weight", weight)


def generate(comfy: RunningComfy, weight: float, workflow: Path | None = None) -> np.ndarray:
    generator = Generator(comfy.settings, workflow=with_weight(comfy.settings, weight, workflow))
    return rgba(generator.generate(Request(prompt="a glass of water", seed=SEED)).image)


def run_rgb_variant(comfy: RunningComfy, weight: float) -> np.ndarray:
    """The production graph up to the plain VAE decode (no RGBA decode), through the real client."""
    wf = with_weight(comfy.settings, weight)
    graph = wf.apply(
        prompt="a glass of water",
        negative_prompt=None,
        seed=SEED,
        width=256,
        height=256,
        filename_prefix=f"rgb_{uuid.uuid4().hex}",
        steps=2,
    )
    decode_rgba = graph[wf.node("alpha:output")]["inputs"]["images"][0]
    graph[wf.node("alpha:output")]["inputs"]["images"] = graph[decode_rgba]["inputs"]["images"]
    del graph[decode_rgba]
    client, deadline = comfy.client, Deadline(300)
    client_id = client.new_client_id()
    ws = client.connect(client_id, deadline)
    try:
        prompt_id = client.submit(graph, client_id, deadline)
        done, ws = client.follow(ws, client_id, prompt_id, deadline)
    finally:
        ws.close()
    images: list[dict[str, Any]] = done.outputs[wf.node("alpha:output")]["images"]
    pixels = rgba(client.view(images[0], deadline))
    assert comfy.settings.output_dir is not None
    (comfy.settings.output_dir / images[0]["subfolder"] / images[0]["filename"]).unlink()
    return pixels


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_attention_injection_changes_the_result(comfy: RunningComfy) -> None:
    on, off, on_again = generate(comfy, 1.0), generate(comfy, 0.0), generate(comfy, 1.0)
    assert (on == on_again).all(), "same seed and weight must reproduce exactly"
    assert mean_abs(on[..., :3], off[..., :3]) > 2.0, "colour must change with the injection"
    assert mean_abs(on[..., 3], off[..., 3]) > 2.0, "alpha must change with the injection"
    assert mean_abs(run_rgb_variant(comfy, 1.0), run_rgb_variant(comfy, 0.0)) > 2.0
    log = comfy.log()
    assert "converted 560 legacy lora patches to LoRAAdapter" in log
    assert "patch type not recognized" not in log


def test_conv_injection_changes_the_result(comfy: RunningComfy) -> None:
    """The shipped "SDXL, Conv Injection" variant: its `::diff::` deltas go through the same add_patches path
    (the fix pack passes them on unchanged) and change the image; the result is RGBA with a varying alpha."""
    conv = REPO / "workflows" / "alpha_txt2img_conv.json"
    on, off = generate(comfy, 1.0, conv), generate(comfy, 0.0, conv)
    assert on.shape == (256, 256, 4) and on[..., 3].min() < on[..., 3].max()
    assert mean_abs(on[..., :3], off[..., :3]) > 2.0, "colour must change with the injection"
    assert mean_abs(on[..., 3], off[..., 3]) > 2.0, "alpha must change with the injection"
    attention = generate(comfy, 1.0)
    assert mean_abs(on, attention) > 2.0, "conv and attention injection are different models"
    log = comfy.log()
    assert "WEIGHT NOT MERGED" not in log and "patch type not recognized" not in log


@pytest.fixture(scope="module")
def unfixed(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningComfy]:
    """A second ComfyUI that loads ComfyUI-layerdiffuse but not our fix pack."""
    settings = test_settings.replace(
        comfyui_port=free_port(),
        output_dir=tmp_path_factory.mktemp("unfixed-output"),
        comfyui_args=("--disable-all-custom-nodes", "--whitelist-custom-nodes", "ComfyUI-layerdiffuse"),
    )
    with running_comfy(settings, tmp_path_factory, "unfixed") as running:
        yield running


def test_control_without_the_fix_pack(unfixed: RunningComfy) -> None:
    with pytest.raises(ExecutionError) as caught:
        Generator(unfixed.settings).generate(Request(prompt="a glass of water", seed=SEED))
    assert caught.value.node_type == "LayeredDiffusionDecodeRGBA"
    assert caught.value.exception_type == "AttributeError"
    assert "join_image_with_alpha" in caught.value.message
    assert (run_rgb_variant(unfixed, 1.0) == run_rgb_variant(unfixed, 0.0)).all(), (
        "without the fix the injection is dropped, so the weight changes nothing"
    )
    log = unfixed.log()
    assert "patch type not recognized lora diffusion_model." in log
    assert "Skipping alpha_layerdiffuse_fix" in log and "alpha_layerdiffuse_fix: " not in log
