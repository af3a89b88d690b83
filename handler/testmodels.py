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
FILES = (CHECKPOINT, ATTN_INJECTION, CONV_INJECTION, TRANSPARENT_DECODER)
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
