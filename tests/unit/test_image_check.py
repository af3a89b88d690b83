"""scripts/image_check.sh and its helpers, without building anything (CI runs the build itself: .ci/run)."""

from __future__ import annotations

import base64
import io
import subprocess

import pytest
from PIL import Image

from handler.paths import REPO
from scripts.image_engines import docker_size, format_layers, human
from scripts.image_smoke import assert_png

SCRIPT = REPO / "scripts" / "image_check.sh"


def test_ci_runs_the_image_check_offline_after_the_tests() -> None:
    lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-2:] == ["scripts/check.sh", "scripts/image_check.sh --offline"]


def test_help_and_a_bad_argument() -> None:
    shown = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert shown.returncode == 0 and "--offline" in shown.stdout and "set -euo" not in shown.stdout
    bad = subprocess.run([SCRIPT, "--online"], capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "unknown argument --online" in bad.stderr


def test_layer_table_names_each_step_and_the_total() -> None:
    table = format_layers(
        [
            (131_184_640, "/bin/sh"),
            (6_636_950_016, "|5 COMFYUI_SOURCE=wheel PYTHON=/x /bin/sh -c scripts/install_requirements.sh"),
            (12_000, "/bin/sh -c #(nop) COPY dir:abc in handler/"),
        ]
    ).splitlines()
    assert table[1:] == [
        " 125.1 MiB  (a base image layer)",
        "  6.18 GiB  RUN /bin/sh -c scripts/install_requirements.sh",
        "  11.7 KiB  COPY dir:abc in handler/",
        "  6.30 GiB  in all (3 layers, unpacked)",
    ]
    assert (human(512), human(2048)) == ("512 B", "2.0 KiB")
    assert (docker_size("6.64GB"), docker_size("12.3kB"), docker_size("0B")) == (6_640_000_000, 12_300, 0)


def png_body(mode: str, size: tuple[int, int], seed: int = 11) -> dict[str, object]:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    output = {"status": "success", "image_base64": encoded, "url": "data:image/png;base64," + encoded}
    return {"output": {**output, "info": {"seed": seed}}}


def test_the_production_result_is_checked_by_its_content() -> None:
    job = {"prompt": "a glass apple"}
    assert_png(png_body("RGBA", (256, 192)), job)
    for body in (png_body("RGB", (256, 256)), png_body("RGBA", (128, 128)), png_body("RGBA", (256, 256), seed=3)):
        with pytest.raises(AssertionError):
            assert_png(body, job)
    with pytest.raises(AssertionError):
        assert_png({"output": {"status": "error"}}, job)
