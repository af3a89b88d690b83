"""Where the random-weight test models live: their files, the cache key and the folder (no ComfyUI, no torch).

``handler.models.testmodels`` builds them; the settings only need to find them, so this half is apart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# The builder: a change to it (or to this file) keys a new cache folder.
BUILDER = Path(__file__).with_name("models") / "testmodels.py"

CHECKPOINT = ("checkpoints", "juggernautXL_version6Rundiffusion.safetensors")
ATTN_INJECTION = ("layer_model", "layer_xl_transparent_attn.safetensors")
CONV_INJECTION = ("layer_model", "layer_xl_transparent_conv.safetensors")
TRANSPARENT_DECODER = ("layer_model", "vae_transparent_decoder.safetensors")
# The layer modes' files (LayeredDiffusionCondApply: *2ble; LayeredDiffusionDiffApply: *ble2*), each with the
# input channels its UNet's first conv takes: the noise latent plus the one or two latents concatenated to it.
FG2BLE = ("layer_model", "layer_xl_fg2ble.safetensors")
BG2BLE = ("layer_model", "layer_xl_bg2ble.safetensors")
FGBLE2BG = ("layer_model", "layer_xl_fgble2bg.safetensors")
BGBLE2FG = ("layer_model", "layer_xl_bgble2fg.safetensors")
LAYER_INPUT_CHANNELS = {FG2BLE: 8, BG2BLE: 8, FGBLE2BG: 12, BGBLE2FG: 12}
FILES = (CHECKPOINT, ATTN_INJECTION, CONV_INJECTION, TRANSPARENT_DECODER, *LAYER_INPUT_CHANNELS)
COMPLETE = "COMPLETE"


def generator_key() -> str:
    digest = hashlib.sha256()
    for path in (Path(__file__), BUILDER):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def models_dir(cache_root: Path, *, full: bool = False) -> Path:
    """The folder that holds (or will hold) this generator's models."""
    return cache_root / (generator_key() + ("-full" if full else ""))


def files(full: bool) -> tuple[tuple[str, str], ...]:
    return tuple(f for f in FILES if not (full and f == CONV_INJECTION))


def is_complete(folder: Path) -> bool:
    full = folder.name.endswith("-full")
    return (folder / COMPLETE).is_file() and all((folder / sub / name).is_file() for sub, name in files(full))
