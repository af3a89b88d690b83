"""Run inside a fresh interpreter by test_layer_models.py: load the test checkpoint with ComfyUI's own loader,
apply each layer file through the real LayeredDiffusionCondApply / LayeredDiffusionDiffApply nodes (with our
fix pack installed, as in the image), load the patched UNet the way a prompt does, run it once per input latent,
and switch between a mode's two passes; print JSON.

Usage: python layer_models_probe.py COMFYUI_DIR MODELS_DIR
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # before ComfyUI's folder, which has a tests package of its own
from tests.unit.fixpack_probe import import_package  # noqa: E402

CONV_IN = "diffusion_model.input_blocks.0.0.weight"
# (node, config, file); foreground mode is bg2ble then bgble2fg, background mode fg2ble then fgble2bg.
CASES = (
    ("LayeredDiffusionCondApply", "SDXL, Foreground", "layer_xl_fg2ble.safetensors"),
    ("LayeredDiffusionCondApply", "SDXL, Background", "layer_xl_bg2ble.safetensors"),
    ("LayeredDiffusionDiffApply", "SDXL, Foreground", "layer_xl_fgble2bg.safetensors"),
    ("LayeredDiffusionDiffApply", "SDXL, Background", "layer_xl_bgble2fg.safetensors"),
)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def apply(nodes: dict[str, Any], model: Any, case: tuple[str, str, str], latent: Any) -> tuple[Any, Any]:
    """The node's patched model and its positive conditioning (which carries the c_concat latents)."""
    import torch

    node, config, _ = case
    cond = [[torch.zeros(1, 77, 2048), {"pooled_output": torch.zeros(1, 1280)}]]
    samples = {"samples": latent}
    if node == "LayeredDiffusionCondApply":
        work, positive, _ = nodes[node]().apply_layered_diffusion(model, cond, cond, samples, config, 1.0)
    else:
        blended = {"samples": torch.roll(latent, 1, dims=1)}
        work, positive, _ = nodes[node]().apply_layered_diffusion(model, cond, cond, blended, samples, config, 1.0)
    return work, positive


def forward(work: Any, positive: Any) -> Any:
    import torch

    torch.manual_seed(1)
    x = torch.randn(1, 4, 32, 32)
    c_concat = positive[0][1]["model_conds"]["c_concat"].cond
    with torch.no_grad():
        return work.model.apply_model(
            x, torch.tensor([500.0]), c_concat=c_concat, c_crossattn=positive[0][0], y=torch.zeros(1, 2816)
        )


def probe_file(nodes: dict[str, Any], base: Any, case: tuple[str, str, str], layer_dir: Path) -> dict[str, Any]:
    import comfy.model_management
    import comfy.utils
    import torch

    state = comfy.utils.load_torch_file(str(layer_dir / case[2]))
    keys = {key.split("::")[0] for key in state}
    outputs, conv_in = [], None
    for image in (0, 1):  # two input images (latents), same noise and seed
        latent = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(100 + image))
        work, positive = apply(nodes, base, case, latent)
        started = time.perf_counter()
        comfy.model_management.load_models_gpu([work])
        load_s = time.perf_counter() - started
        conv_in = work.model.diffusion_model.input_blocks[0][0].weight.detach().float()
        outputs.append(forward(work, positive))
    delta = state[f"{CONV_IN}::diff::0"].float()
    base_channels = base.model.diffusion_model.in_channels  # the checkpoint's conv, before any patch
    assert conv_in is not None
    return {
        "keys": len(keys),
        "patched": len(set(work.patches) & keys),
        "conv_in": list(conv_in.shape),
        "extra_channels_are_the_delta": bool(torch.allclose(conv_in[:, base_channels:], delta[:, base_channels:])),
        "extra_channels_std": float(conv_in[:, base_channels:].std()),
        "noise_channels_std": float(conv_in[:, :base_channels].std()),
        "finite": all(bool(torch.isfinite(out).all()) for out in outputs),
        "output_change": float((outputs[0] - outputs[1]).abs().mean() / outputs[0].abs().mean()),
        "load_s": round(load_s, 3),
    }


def probe_switch(nodes: dict[str, Any], base: Any, first: int, second: int) -> dict[str, Any]:
    """A mode's two passes, as one prompt runs them: each load re-patches the same UNet."""
    import comfy.model_management
    import torch

    latent = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(7))
    shapes, seconds = [], []
    for index in (first, second, first):
        work, positive = apply(nodes, base, CASES[index], latent)
        started = time.perf_counter()
        comfy.model_management.load_models_gpu([work])
        seconds.append(round(time.perf_counter() - started, 3))
        forward(work, positive)
        shapes.append(list(work.model.diffusion_model.input_blocks[0][0].weight.shape))
    return {"conv_in": shapes, "load_s": seconds}


def main(comfyui_dir: Path, models_dir: Path) -> dict[str, Any]:
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    logging.getLogger().setLevel(logging.INFO)
    sys.path.insert(0, str(comfyui_dir))
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management is imported
    import comfy.sd

    folder_paths = importlib.import_module("folder_paths")  # ComfyUI's model folders
    folder_paths.add_model_folder_path("layer_model", str(models_dir / "layer_model"), is_default=True)
    import_package("alpha_layerdiffuse_fix", REPO / "custom_nodes" / "alpha_layerdiffuse_fix")
    layer = import_package("layerdiffuse_under_test", comfyui_dir / "custom_nodes" / "ComfyUI-layerdiffuse")
    nodes = layer.NODE_CLASS_MAPPINGS
    checkpoint = next((models_dir / "checkpoints").glob("*.safetensors"))
    base = comfy.sd.load_checkpoint_guess_config(str(checkpoint), output_vae=False, output_clip=False)[0]
    files = {case[2]: probe_file(nodes, base, case, models_dir / "layer_model") for case in CASES}
    switches = {"foreground": probe_switch(nodes, base, 1, 3), "background": probe_switch(nodes, base, 0, 2)}
    logged = [record.getMessage() for record in recorder.records]
    return {
        "files": files,
        "switches": switches,
        "warnings": [r.getMessage() for r in recorder.records if r.levelno >= logging.WARNING],
        "pads_logged": sum(message.startswith(f"Pad weight {CONV_IN}") for message in logged),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
