"""The extra model paths the process owner gives ComfyUI: our folder, and a network volume's first."""

from __future__ import annotations

from pathlib import Path

from handler.comfyui.process import MODEL_FOLDERS, ComfyProcess
from handler.settings import Settings


def sections(text: str) -> list[str]:
    return [line.rstrip(":") for line in text.splitlines() if not line.startswith(" ")]


def test_own_models_only_without_a_volume(tmp_path: Path) -> None:
    settings = Settings(comfyui_dir=tmp_path / "comfy", volume_dir=tmp_path / "no-volume")
    text = ComfyProcess(settings).model_paths_yaml()
    assert sections(text) == ["alpha"]
    assert f"  base_path: {tmp_path / 'comfy' / 'models'}" in text
    assert all(f"  {folder}: {folder}" in text for folder in ("checkpoints", "layer_model"))


def test_a_mounted_volume_is_searched_first(tmp_path: Path) -> None:
    (tmp_path / "volume" / "models" / "checkpoints").mkdir(parents=True)
    (tmp_path / "volume" / "models" / "layer_model").mkdir(parents=True)
    settings = Settings(comfyui_dir=tmp_path / "comfy", volume_dir=tmp_path / "volume", models_dir=tmp_path / "m")
    text = ComfyProcess(settings).model_paths_yaml()
    # ComfyUI puts each is_default section in front of the earlier ones: the last one written wins.
    assert sections(text) == ["alpha", "runpod_volume"]
    volume = text.split("runpod_volume:\n", 1)[1]
    assert volume.splitlines()[:2] == [f"  base_path: {tmp_path / 'volume' / 'models'}", "  is_default: true"]
    assert volume.splitlines()[2:] == ["  checkpoints: checkpoints", "  layer_model: layer_model"]
    assert {"checkpoints", "layer_model"} <= set(MODEL_FOLDERS)


def test_only_the_volume_folders_that_exist(tmp_path: Path) -> None:
    """A volume with checkpoints only must not put an empty layer_model folder in front of the baked one
    (ComfyUI-layerdiffuse loads from the first layer_model folder and would try to download there)."""
    (tmp_path / "volume" / "models" / "checkpoints").mkdir(parents=True)
    text = ComfyProcess(Settings(volume_dir=tmp_path / "volume")).model_paths_yaml()
    volume = text.split("runpod_volume:\n", 1)[1]
    assert "layer_model" not in volume and "  checkpoints: checkpoints" in volume
    (tmp_path / "empty").mkdir()
    assert "runpod_volume" not in ComfyProcess(Settings(volume_dir=tmp_path / "empty")).model_paths_yaml()


def test_test_mode_searches_its_test_models_alone(tmp_path: Path) -> None:
    """ALPHA_TEST_MODELS=1 in the image, where ALPHA_MODELS_DIR names the real weights and a volume may be
    mounted: the test models only, never a mix with real ones."""
    (tmp_path / "volume" / "models" / "checkpoints").mkdir(parents=True)
    settings = Settings(
        test_models=True,
        test_models_cache=tmp_path / "cache",
        models_dir=tmp_path / "real",
        volume_dir=tmp_path / "volume",
    )
    text = ComfyProcess(settings).model_paths_yaml()
    assert sections(text) == ["alpha"]
    [base] = [line for line in text.splitlines() if "base_path" in line]
    assert base.startswith(f"  base_path: {tmp_path / 'cache'}/"), base
