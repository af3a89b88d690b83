"""Random-weight test models, built with ComfyUI's own model classes.

The files carry the production file names and the exact key format of the
real ones, so that the production workflow runs unchanged on a CPU:

* ``checkpoints/<JuggernautXL name>``: an SGM-format SDXL checkpoint
  (``model.diffusion_model.*``, ``conditioner.embedders.{0,1}.*``,
  ``first_stage_model.*``) that ComfyUI detects as SDXL. The UNet keeps SDXL's
  width 320, transformer depths, context and adm sizes but shrinks
  ``channel_mult`` to ``[1, 1, 1]``; the text encoders stay full size because
  ComfyUI builds them from fixed configs. ``--full-size`` builds SDXL's own
  UNet (``[1, 2, 4]``, 2.6 B parameters) instead, for timings on a GPU; that
  set has no conv-injection file.
* ``layer_model/layer_xl_transparent_attn.safetensors``: LayerDiffuse attention
  injection in its real ``diffusion_model.<key>::lora::<i>`` format (0 = up,
  1 = down) for every attention projection of that UNet. A ``::diff::`` file
  would hide the dropped-patch bug the fix pack repairs.
* ``layer_model/layer_xl_transparent_conv.safetensors``: LayerDiffuse conv
  injection as a weight delta in the ``diffusion_model.<key>::diff::0`` format
  of LayerDiffuse's diff files, here for every convolution of that UNet (which
  keys the real file covers cannot be checked offline; the format is what the
  node and ComfyUI read).
* ``layer_model/vae_transparent_decoder.safetensors``: the transparent VAE
  decoder with its real architecture; it loads strictly.
* ``layer_model/layer_xl_{fg2ble,bg2ble,fgble2bg,bgble2fg}.safetensors``: the
  layer modes' files, as ``diffusion_model.<key>::diff::0`` weight deltas: the
  input conv ``input_blocks.0.0.weight`` at (320, 8, 3, 3) (*2ble) or (320, 12,
  3, 3) (*ble2*), which ComfyUI pads the UNet's 4-channel conv to, its extra
  channels (the node's c_concat latents) ``CONCAT_GAIN`` times the noise
  channels' spread, which makes up for the test VAE's small latents, so that
  the input image shows in the output; and the biases and norm scales of the
  ResBlocks, down/upsamplers and ``out``. Known offline: those shapes; that the
  real files hold ``::diff::`` deltas only, no ``::lora::`` factors (a public
  converter of all four to diffusers keys strips ``::diff::N`` and maps UNet
  keys, nothing else, and images made with its output are published); that
  fg2ble and fgble2bg (702 MB, as is bg2ble) touch only the input conv,
  ResBlocks, down/upsamplers and ``out`` (its first version, run on those two,
  refused any other key). Assumed: bgble2fg (3.62 GB, the conv file's size) also
  covers the transformer blocks (the later converter maps their keys). The real
  files' full deltas of those weights are left out: a few hundred KB each.

The cache folder (``handler.testmodels``, which the settings use to find it) is
keyed by a hash of this file, so a change to the generator makes a new folder.
This module imports ComfyUI only inside ``generate``; the rest of the package
never imports ComfyUI.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from handler.settings import load_or_exit
from handler.testmodels import (
    ATTN_INJECTION,
    CHECKPOINT,
    COMPLETE,
    CONV_INJECTION,
    LAYER_INPUT_CHANNELS,
    TRANSPARENT_DECODER,
    is_complete,
    models_dir,
)

log = logging.getLogger(__name__)

SEED = 20241126
LORA_RANK = 64
# Scale of the LoRA factors: large enough that weight 1 visibly changes the image.
LORA_STD = 0.05
# Scale of the conv deltas, relative to each weight's own spread.
DIFF_SCALE = 0.3
CONV_IN = "diffusion_model.input_blocks.0.0.weight"
# The c_concat channels' gain: the random test VAE's latents of a picture come out of process_in with a spread of
# about 0.017 where a trained SDXL VAE's are about 1 (that is what its scale factor is for); without it the input
# image barely reaches the output (mean pixel change under 0.5 between very different pictures).
CONCAT_GAIN = 50.0
# Spread of the layer files' deltas of biases and norm scales (the test UNet's are 0 and 1).
SMALL_DIFF_STD = 0.02
SDXL_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "out_channels": 4,
    "use_spatial_transformer": True,
    "legacy": False,
    "num_classes": "sequential",
    "adm_in_channels": 2816,
    "in_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2],
    "transformer_depth": [0, 0, 2, 2, 10, 10],
    "channel_mult": [1, 1, 1],
    "transformer_depth_middle": 10,
    "use_linear_in_transformer": True,
    "context_dim": 2048,
    "num_head_channels": 64,
    "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}
SDXL_UNET_FULL = dict(SDXL_UNET, channel_mult=[1, 2, 4])
SDXL_VAE = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [],
    "dropout": 0.0,
}


def _init_random(module: Any) -> None:
    """PyTorch's default init for every parameter: ComfyUI's ops skip init to load faster."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.ndim >= 2:
                torch.nn.init.kaiming_uniform_(param, a=math.sqrt(5))
            elif name.endswith("weight"):
                param.fill_(1.0)
            else:
                param.zero_()


def _half(state: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def _resnet_side_1d(unet: Any) -> dict[str, Any]:
    """The biases and norm scales of the input conv, ResBlocks, down/upsamplers and ``out``, by patch key."""
    from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, ResBlock, Upsample

    found = {}
    for name, module in unet.named_modules():
        if isinstance(module, ResBlock | Downsample | Upsample) or name in ("input_blocks.0.0", "out"):
            for param_name, param in module.named_parameters():
                if param.ndim == 1:
                    found[f"diffusion_model.{name}.{param_name}"] = param.detach()
    return found


Built = tuple[dict[str, Any], list[tuple[str, int, int]], dict[str, Any], dict[str, Any]]


def _build_checkpoint(torch: Any, full: bool) -> Built:
    """The SDXL checkpoint's state dict, every attention projection (key, out, in), every conv weight and the
    ResBlock side's 1-D parameters (by patch key)."""
    import comfy.model_detection
    import comfy.sd
    import comfy.supported_models
    from comfy.ldm.models.autoencoder import AutoencoderKL

    model_config = comfy.supported_models.SDXL(dict(SDXL_UNET_FULL if full else SDXL_UNET, dtype=torch.float32))
    model = model_config.get_model({}, device="cpu")
    _init_random(model.diffusion_model)

    clip = comfy.sd.CLIP(model_config.clip_target(), model_options={"dtype": torch.float32})
    _init_random(clip.cond_stage_model)

    vae = AutoencoderKL(ddconfig=SDXL_VAE, embed_dim=4)
    _init_random(vae)

    state = model.state_dict_for_saving(clip.get_sd(), vae.state_dict(), None)
    detected = comfy.model_detection.model_config_from_unet(state, "model.diffusion_model.")
    if not isinstance(detected, comfy.supported_models.SDXL):
        raise RuntimeError(f"ComfyUI detects the test checkpoint as {type(detected).__name__}, not SDXL")

    projections, convs = [], {}
    for name, module in model.diffusion_model.named_modules():
        if (".attn1.to_" in name or ".attn2.to_" in name) and isinstance(module, torch.nn.Linear):
            projections.append((f"diffusion_model.{name}.weight", module.out_features, module.in_features))
        elif isinstance(module, torch.nn.Conv2d):
            convs[f"diffusion_model.{name}.weight"] = module.weight.detach()
    return _half(state), projections, convs, _resnet_side_1d(model.diffusion_model)


def _build_attn_injection(torch: Any, projections: list[tuple[str, int, int]]) -> dict[str, Any]:
    state = {}
    for key, out_features, in_features in projections:
        state[f"{key}::lora::0"] = torch.randn(out_features, LORA_RANK) * LORA_STD
        state[f"{key}::lora::1"] = torch.randn(LORA_RANK, in_features) * LORA_STD
    return _half(state)


def _build_conv_injection(torch: Any, convs: dict[str, Any]) -> dict[str, Any]:
    return _half(
        {f"{key}::diff::0": torch.randn_like(weight) * weight.std() * DIFF_SCALE for key, weight in convs.items()}
    )


def _build_layer_file(torch: Any, conv_in: Any, small: dict[str, Any], in_channels: int, seed: int) -> dict[str, Any]:
    """A layer mode's deltas, from its own random stream (the other files' bytes do not depend on it)."""
    generator = torch.Generator().manual_seed(seed)
    out_channels, base, *kernel = conv_in.shape
    delta = torch.randn(out_channels, in_channels, *kernel, generator=generator) * conv_in.std()
    delta[:, :base] *= DIFF_SCALE  # a nudge to the noise channels; the padded ones start from zero
    delta[:, base:] *= CONCAT_GAIN
    state = {f"{CONV_IN}::diff::0": delta}
    for key, param in small.items():
        state[f"{key}::diff::0"] = torch.randn(param.shape, generator=generator) * SMALL_DIFF_STD
    return _half(state)


def _build_transparent_decoder(torch: Any, comfyui_dir: Path) -> dict[str, Any]:
    path = comfyui_dir / "custom_nodes" / "ComfyUI-layerdiffuse" / "lib_layerdiffusion" / "models.py"
    spec = importlib.util.spec_from_file_location("_alpha_layerdiffusion_models", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    decoder = models.UNet1024(in_channels=3, out_channels=4)
    with torch.no_grad():
        # Upstream zero-inits the latent input; trained weights are not zero, and
        # the latent must reach the alpha so that LayerDiffuse shows in it.
        torch.nn.init.normal_(decoder.latent_conv_in.weight, std=0.5)
        # Centre the outputs in [0, 1] so that the clipped alpha varies per pixel.
        decoder.conv_out.weight.mul_(4.0)
        decoder.conv_out.bias.fill_(0.5)
    return _half(decoder.state_dict())


def generate(comfyui_dir: Path, out: Path, *, full: bool = False) -> None:
    """Write the files into out (a fresh folder)."""
    sys.path.insert(0, str(comfyui_dir))
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management is imported: build on the CPU
    import comfy.utils
    import torch

    torch.manual_seed(SEED)
    started = time.monotonic()
    checkpoint, projections, convs, small = _build_checkpoint(torch, full)
    states = {
        CHECKPOINT: checkpoint,
        ATTN_INJECTION: _build_attn_injection(torch, projections),
        TRANSPARENT_DECODER: _build_transparent_decoder(torch, comfyui_dir),
    }
    if not full:
        states[CONV_INJECTION] = _build_conv_injection(torch, convs)
    for number, (file, in_channels) in enumerate(LAYER_INPUT_CHANNELS.items(), 1):
        states[file] = _build_layer_file(torch, convs[CONV_IN], small, in_channels, SEED + number)
    for (sub, name), state in states.items():
        (out / sub).mkdir(parents=True, exist_ok=True)
        comfy.utils.save_torch_file(state, str(out / sub / name))
        size = (out / sub / name).stat().st_size
        log.info("wrote %s/%s: %d tensors, %.1f MiB", sub, name, len(state), size / 2**20)
    log.info("test models built in %.1f s", time.monotonic() - started)


def ensure(comfyui_dir: Path, cache_root: Path, *, full: bool = False) -> Path:
    """Return the cached test models folder, generating it first when needed."""
    folder = models_dir(cache_root, full=full)
    # The key once: the source may change while the models are built (an edit, a formatter).
    key = folder.name.removesuffix("-full")
    if is_complete(folder):
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        generate(comfyui_dir, partial, full=full)
        (partial / COMPLETE).write_text(key + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    for stale in cache_root.iterdir():
        # Older generators' models (2.3 GiB each) are never used again.
        match = re.fullmatch(r"([0-9a-f]{16})(-full)?(\.partial)?", stale.name)
        if match and match.group(1) != key:
            log.info("removing stale test models %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    settings = load_or_exit()
    parser = argparse.ArgumentParser(description="Generate (or find) the cached random-weight test models.")
    parser.add_argument("--comfyui", type=Path, default=settings.comfyui_dir)
    parser.add_argument("--cache", type=Path, default=settings.test_models_cache)
    parser.add_argument("--full-size", action="store_true", help="SDXL's full-size UNet (for GPU timings)")
    parser.add_argument("--print-dir", action="store_true", help="print the models folder on stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder = ensure(args.comfyui, args.cache, full=args.full_size)
    log.info("test models: %s", folder)
    if args.print_dir:
        print(folder)  # the command's result, for scripts (bench/gpu.sh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
