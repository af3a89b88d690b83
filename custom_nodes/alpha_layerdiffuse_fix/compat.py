"""The three fixes, each idempotent.

1. Attention injection was silently dropped. ComfyUI-layerdiffuse hands its weights to
   ``ModelPatcher.add_patches`` as legacy ``("lora", [up, down, alpha, mid, ...])`` tuples.
   v0.3.75 only understands LoRA patches as ``comfy.weight_adapter`` objects: it logs
   ``patch type not recognized lora <key>`` and leaves the weight unchanged, so the job
   "succeeds" with no transparency (huchenlei/ComfyUI-layerdiffuse#127). We convert
   the legacy tuple into the ``LoRAAdapter`` that ComfyUI's own LoRA loader builds.
2. ``LayeredDiffusionDecodeRGBA`` calls ``JoinImageWithAlpha().join_image_with_alpha``,
   a method that went away when the node moved to the V3 node API. We restore it as a
   thin alias of the node's ``execute``.
3. SD1.5 attention sharing replaces attention modules with an object patch whose
   ``forward`` predates the ``transformer_options`` keyword ComfyUI now passes. We drop
   that keyword for such modules only.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from comfy.model_patcher import ModelPatcher
from comfy.weight_adapter.lora import LoRAAdapter
from comfy_extras.nodes_compositing import JoinImageWithAlpha

log = logging.getLogger(__name__)

# The legacy tuple's slots, in ComfyUI's LoRAAdapter order.
LORA_SLOTS = ("up", "down", "alpha", "mid", "dora_scale", "reshape")
_MARK = "_alpha_layerdiffuse_fix"


def legacy_lora_to_adapter(value: Any) -> Any:
    """Return a LoRAAdapter for a legacy ("lora", weights) patch; anything else unchanged."""
    if not (
        isinstance(value, tuple | list)
        and len(value) == 2
        and value[0] == "lora"
        and isinstance(value[1], tuple | list)
    ):
        return value
    weights = list(value[1])
    extra = [i for i, w in enumerate(weights[len(LORA_SLOTS) :], len(LORA_SLOTS)) if w is not None]
    if extra or weights[0] is None or len(weights) < 2 or weights[1] is None:
        raise ValueError(f"legacy lora patch with an unexpected layout (extra slots {extra})")
    weights += [None] * (len(LORA_SLOTS) - len(weights))
    return LoRAAdapter(set(), tuple(weights[: len(LORA_SLOTS)]))


def _wrap_add_patches(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def add_patches(self: ModelPatcher, patches: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        converted = {key: legacy_lora_to_adapter(value) for key, value in patches.items()}
        count = sum(converted[key] is not patches[key] for key in patches)
        if count:
            log.info("alpha_layerdiffuse_fix: converted %d legacy lora patches to LoRAAdapter", count)
        return original(self, converted, *args, **kwargs)

    setattr(add_patches, _MARK, True)
    return add_patches


def _accepts_transformer_options(forward: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD or p.name == "transformer_options" for p in params)


def adapt_object(obj: Any) -> Any:
    """Let a module whose forward predates ``transformer_options`` be called with it."""
    if isinstance(obj, torch.nn.Module) and not _accepts_transformer_options(obj.forward):
        original = obj.forward

        @functools.wraps(original)
        def forward(*args: Any, transformer_options: Any = None, **kwargs: Any) -> Any:
            return original(*args, **kwargs)

        obj.forward = forward
    return obj


def _wrap_add_object_patch(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def add_object_patch(self: ModelPatcher, name: str, obj: Any) -> Any:
        return original(self, name, adapt_object(obj))

    setattr(add_object_patch, _MARK, True)
    return add_object_patch


def _join_image_with_alpha(self: Any, image: torch.Tensor, alpha: torch.Tensor) -> Any:
    return type(self).execute(image, alpha)


def install() -> None:
    if not getattr(ModelPatcher.add_patches, _MARK, False):
        ModelPatcher.add_patches = _wrap_add_patches(ModelPatcher.add_patches)
    if not getattr(ModelPatcher.add_object_patch, _MARK, False):
        ModelPatcher.add_object_patch = _wrap_add_object_patch(ModelPatcher.add_object_patch)
    if not hasattr(JoinImageWithAlpha, "join_image_with_alpha"):
        JoinImageWithAlpha.join_image_with_alpha = _join_image_with_alpha
    log.info(
        "alpha_layerdiffuse_fix: legacy lora patches, JoinImageWithAlpha alias and "
        "transformer_options adapter installed"
    )
