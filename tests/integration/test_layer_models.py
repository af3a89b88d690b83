"""The layer modes' test models on ComfyUI's real loader and the real LayeredDiffusionCondApply /
LayeredDiffusionDiffApply nodes: every patch lands (none dropped, no shape warning), the UNet's input conv
grows to the file's 8 or 12 channels, the input latent changes the UNet's output, and a mode's two passes
re-patch the same UNet back and forth.

The probe runs in a fresh interpreter (importing ComfyUI sets process-wide state); no server is started.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from handler import testmodels
from handler.settings import Settings

PROBE = Path(__file__).with_name("layer_models_probe.py")
# What ComfyUI logs when a patch does not take: an unknown key, a shape it cannot merge, an unknown type.
DROPPED = re.compile(r"not loaded|SHAPE MISMATCH|NOT MERGED|not recognized|Calculate Weight Failed", re.IGNORECASE)


@pytest.fixture(scope="module")
def probed(test_settings: Settings) -> dict[str, Any]:
    folder = testmodels.models_dir(test_settings.test_models_cache)
    done = subprocess.run(
        [sys.executable, str(PROBE), str(test_settings.comfyui_dir), str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("file", list(testmodels.LAYER_INPUT_CHANNELS), ids=lambda f: f[1].split(".")[0])
def test_each_file_patches_the_unet_fully(probed: dict[str, Any], file: tuple[str, str]) -> None:
    found = probed["files"][file[1]]
    assert found["patched"] == found["keys"] > 100, "every key of the file is a key of the UNet"
    assert found["conv_in"] == [320, testmodels.LAYER_INPUT_CHANNELS[file], 3, 3]
    assert found["extra_channels_are_the_delta"] is True  # padded with zeros, then the delta added
    assert found["extra_channels_std"] > 0.5 * found["noise_channels_std"] > 0
    assert found["finite"] is True


@pytest.mark.parametrize("file", list(testmodels.LAYER_INPUT_CHANNELS), ids=lambda f: f[1].split(".")[0])
def test_the_input_image_changes_the_output(probed: dict[str, Any], file: tuple[str, str]) -> None:
    """Two input latents, the same noise: the UNet's outputs differ by a large fraction of their size."""
    assert probed["files"][file[1]]["output_change"] > 0.2


def test_a_modes_two_passes_repatch_the_same_unet(probed: dict[str, Any]) -> None:
    for mode in ("foreground", "background"):
        assert probed["switches"][mode]["conv_in"] == [[320, 8, 3, 3], [320, 12, 3, 3], [320, 8, 3, 3]], mode
    assert probed["pads_logged"] == 2 * 4 + 2 * 3  # every load pads the 4-channel conv anew


def test_comfyui_logs_no_dropped_or_unmerged_patch(probed: dict[str, Any]) -> None:
    assert not [message for message in probed["warnings"] if DROPPED.search(message)], probed["warnings"]
