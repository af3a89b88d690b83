"""Run inside a fresh interpreter by test_fixpack.py: import ComfyUI, optionally the fix pack,
exercise the three broken paths on the given ComfyUI-layerdiffuse copies, print JSON.

Usage: python fixpack_probe.py COMFYUI_DIR FIX_PACK_DIR|none NAME=LAYERDIFFUSE_DIR...
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def import_package(name: str, folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def digest(tensor: Any) -> str:
    return hashlib.sha256(tensor.detach().float().contiguous().numpy().tobytes()).hexdigest()[:16]


def probe_lora(logged: list[str]) -> dict[str, bool]:
    """1. The legacy ("lora", [...]) patch that LayerDiffuse attention injection produces."""
    import comfy.model_patcher
    import torch

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 6, bias=False)
    model = torch.nn.Sequential(layer)
    before = layer.weight.detach().clone()
    up, down = torch.randn(6, 2), torch.randn(2, 8)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
    patcher.add_patches({"0.weight": ("lora", [up, down, *[None] * 14])}, 0.5)
    patcher.patch_model()
    after = layer.weight.detach().clone()
    return {
        "applied": bool(torch.allclose(after, before + 0.5 * up @ down, atol=1e-5)),
        "unchanged": bool(torch.equal(after, before)),
        "not_recognized_logged": any("patch type not recognized lora" in m for m in logged),
    }


def probe_rgba(package: ModuleType, enums: ModuleType) -> dict[str, Any]:
    """2. RGBA decode, with the 8-pass transparent decoder replaced by a fixed stand-in."""
    import torch

    class Decoder:
        def decode_pixel(self, pixel: Any, latent: Any) -> Any:
            b, _, h, w = pixel.shape
            return torch.linspace(0, 1, b * 4 * h * w).reshape(b, 4, h, w)

    node = package.NODE_CLASS_MAPPINGS["LayeredDiffusionDecodeRGBA"]()
    node.vae_transparent_decoder[enums.StableDiffusionVersion.SDXL] = Decoder()
    try:
        rgba = node.decode({"samples": torch.zeros(1, 4, 8, 8)}, torch.rand(1, 64, 64, 3), "SDXL", 16)[0]
        return {
            "shape": list(rgba.shape),
            "digest": digest(rgba),
            "alpha_is_decoder_alpha": bool(
                torch.allclose(rgba[..., 3], torch.linspace(0, 1, 4 * 64 * 64).reshape(1, 4, 64, 64)[:, 0], atol=1e-6)
            ),
        }
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def probe_sharing(sharing: ModuleType) -> dict[str, Any]:
    """3. SD1.5 attention sharing: the core calls attn1(..., transformer_options=...)."""
    import comfy.model_patcher
    import comfy.ops
    import torch
    from comfy.ldm.modules.attention import BasicTransformerBlock

    cpu = torch.device("cpu")
    torch.manual_seed(1)
    block = BasicTransformerBlock(64, 1, 64, context_dim=64, operations=comfy.ops.disable_weight_init)
    with torch.no_grad():
        for param in block.parameters():
            param.normal_(0, 0.05)
    holder = torch.nn.Module()
    holder.block = block
    unit = sharing.AttentionSharingUnit(block.attn1, frames=2, use_control=False, rank=4)
    block_patcher = comfy.model_patcher.ModelPatcher(holder, load_device=cpu, offload_device=cpu)
    block_patcher.add_object_patch("block.attn1", unit)
    block_patcher.patch_model()
    options = {"cond_or_uncond": [0], "sigmas": torch.ones(2)}
    try:
        y = block(torch.randn(2, 16, 64), context=torch.randn(2, 4, 64), transformer_options=options)
        return {"shape": list(y.shape), "finite": bool(torch.isfinite(y).all()), "digest": digest(y)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    comfy_dir, fix_dir, variants = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    sys.path.insert(0, str(comfy_dir))
    from comfy.cli_args import args

    args.cpu = True
    # ComfyUI's modules load before the log capture and the fix pack, as ComfyUI loads them before custom nodes.
    for module in ("comfy.model_patcher", "comfy.ops", "torch", "comfy.ldm.modules.attention"):
        importlib.import_module(module)

    logged: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    logging.getLogger().addHandler(Capture())
    logging.getLogger().setLevel(logging.INFO)
    if fix_dir != "none":
        import_package("alpha_layerdiffuse_fix", Path(fix_dir))
    out: dict[str, Any] = {"lora": probe_lora(logged)}
    for variant in variants:
        name, folder = variant.split("=", 1)
        package = import_package(f"ld_{name}", Path(folder))
        enums = sys.modules[f"ld_{name}.lib_layerdiffusion.enums"]
        sharing = sys.modules[f"ld_{name}.lib_layerdiffusion.attention_sharing"]
        out[name] = {"rgba": probe_rgba(package, enums), "attention_sharing": probe_sharing(sharing)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
