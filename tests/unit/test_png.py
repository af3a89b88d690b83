"""check_rgba on real PNG bytes made with Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from handler.errors import OutputError, TransparencyError
from handler.png import check_rgba, percent
from handler.settings import Settings

DEFAULT = Settings().max_uniform_alpha


def png(mode: str, alpha: list[int] | None = None, fmt: str = "PNG") -> bytes:
    image = Image.new(mode, (4, 2), (10, 20, 30, 255)[: len(mode)] if mode != "L" else 7)
    if alpha is not None:
        image.putalpha(Image.frombytes("L", (4, 2), bytes(alpha)))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def coverage_png(size: int, transparent: int, opaque: int) -> bytes:
    """A size x size RGBA PNG whose alpha has exactly this many 0 and 255 pixels; the rest are 128."""
    alpha = np.full(size * size, 128, dtype=np.uint8)
    alpha[:transparent] = 0
    alpha[transparent : transparent + opaque] = 255
    image = Image.fromarray(np.dstack([np.full((size, size, 3), 90, np.uint8), alpha.reshape(size, size)]), "RGBA")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_varied_alpha_passes_with_stats() -> None:
    stats = check_rgba(png("RGBA", [0, 0, 255, 255, 128, 128, 255, 0]), max_uniform=DEFAULT)
    assert (stats.width, stats.height, stats.alpha_min, stats.alpha_max) == (4, 2, 0, 255)
    assert stats.transparent == 3 / 8 and stats.opaque == 3 / 8
    assert stats.alpha_mean == pytest.approx((255 * 3 + 256) / 8, abs=1e-3)


@pytest.mark.parametrize(
    ("alpha", "words"),
    [
        ([255] * 8, "alpha is 100% opaque: 8 of 8 pixels (threshold 99.9%"),
        ([0] * 8, "alpha is 100% transparent: 8 of 8 pixels (threshold 99.9%"),
        ([77] * 8, "alpha is constant 77 (8 pixels)"),
    ],
)
def test_constant_alpha_fails(alpha: list[int], words: str) -> None:
    with pytest.raises(TransparencyError) as caught:
        check_rgba(png("RGBA", alpha), max_uniform=DEFAULT)
    assert words in caught.value.message and caught.value.message.endswith("LayerDiffuse did not take effect")
    assert caught.value.code == "transparency_failed"


@pytest.mark.parametrize(
    ("alpha", "words"), [([255] * 8, "100% opaque"), ([0] * 8, "100% transparent"), ([5] * 8, "constant 5")]
)
def test_a_threshold_of_1_still_refuses_a_constant_alpha(alpha: list[int], words: str) -> None:
    with pytest.raises(TransparencyError, match=words):
        check_rgba(png("RGBA", alpha), max_uniform=1.0)


@pytest.mark.parametrize(
    ("transparent", "opaque", "state", "share"),
    [
        (0, 9_999, "opaque", "99.99% opaque: 9999 of 10000"),
        (9_995, 5, "transparent", "99.95% transparent: 9995 of 10000"),
        (9_991, 0, "transparent", "99.91% transparent: 9991 of 10000"),
    ],
)
def test_nearly_uniform_alpha_fails_with_the_coverage(transparent: int, opaque: int, state: str, share: str) -> None:
    data = coverage_png(100, transparent, opaque)
    with pytest.raises(TransparencyError) as caught:
        check_rgba(data, max_uniform=0.999)
    assert caught.value.message == (
        f"the output's alpha is {share} pixels (threshold 99.9%, "
        "ALPHA_MAX_UNIFORM_ALPHA): LayerDiffuse did not take effect"
    )
    # The same image passes a looser threshold: the figure, not the image, decides.
    assert check_rgba(data, max_uniform=0.9999 if state == "transparent" else 1.0).width == 100


@pytest.mark.parametrize(
    ("transparent", "opaque"),
    [
        (9_990, 0),  # exactly at the threshold: allowed
        (9_500, 300),  # a small object on a big transparent background (95% transparent)
        (6_000, 3_990),  # a cut-out: mostly background, a solid object, a few soft edge pixels
        (400, 200),  # the test models: about 4% transparent, 2% opaque
        (0, 9_990),  # an almost-filled frame with a soft border
    ],
)
def test_normal_cut_outs_pass_the_default(transparent: int, opaque: int) -> None:
    stats = check_rgba(coverage_png(100, transparent, opaque), max_uniform=DEFAULT)
    assert (stats.transparent, stats.opaque) == (transparent / 10_000, opaque / 10_000)


def test_the_default_threshold_passes_one_object_in_a_thousand() -> None:
    """At 1024x1024 the default refuses only when fewer than 0.1% (1049) of the pixels are not transparent;
    a share that rounds to the threshold is shown with the decimals that tell them apart."""
    size = 1024 * 1024
    assert DEFAULT == 0.999
    check_rgba(coverage_png(1024, size - 1049, 1049), max_uniform=DEFAULT)
    with pytest.raises(
        TransparencyError,
        match=r"alpha is 99\.90005% transparent: 1047528 of 1048576 pixels "
        r"\(threshold 99\.9%",
    ):
        check_rgba(coverage_png(1024, size - 1048, 1048), max_uniform=DEFAULT)


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [(0.999, "99.9"), (1.0, "100"), (0.99999999, "99.9999"), (0.5, "50"), (0.0, "0"), (0.12345678, "12.3456")],
)
def test_percent_rounds_down(fraction: float, shown: str) -> None:
    assert percent(fraction) == shown


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (png("RGB"), "RGB, not RGBA"),
        (png("L"), "L, not RGBA"),
        (png("RGB", fmt="JPEG"), "JPEG, not PNG"),
        (b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
        (b"", "not a readable image"),
    ],
)
def test_not_an_rgba_png(data: bytes, words: str) -> None:
    with pytest.raises(OutputError, match=words) as caught:
        check_rgba(data, max_uniform=DEFAULT)
    assert caught.value.code == "invalid_output"
