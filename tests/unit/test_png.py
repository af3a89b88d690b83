"""check_rgba on real PNG bytes made with Pillow."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from handler.errors import OutputError, TransparencyError
from handler.png import check_rgba


def png(mode: str, alpha: list[int] | None = None, fmt: str = "PNG") -> bytes:
    image = Image.new(mode, (4, 2), (10, 20, 30, 255)[: len(mode)] if mode != "L" else 7)
    if alpha is not None:
        image.putalpha(Image.frombytes("L", (4, 2), bytes(alpha)))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_varied_alpha_passes_with_stats() -> None:
    stats = check_rgba(png("RGBA", [0, 0, 255, 255, 128, 128, 255, 0]))
    assert (stats.width, stats.height, stats.alpha_min, stats.alpha_max) == (4, 2, 0, 255)
    assert stats.transparent == 3 / 8 and stats.opaque == 3 / 8
    assert stats.alpha_mean == pytest.approx((255 * 3 + 256) / 8, abs=1e-3)


@pytest.mark.parametrize(("alpha", "words"), [([255] * 8, "fully opaque"), ([0] * 8, "fully transparent"),
                                              ([77] * 8, "constant 77")])
def test_constant_alpha_fails(alpha: list[int], words: str) -> None:
    with pytest.raises(TransparencyError, match=words) as caught:
        check_rgba(png("RGBA", alpha))
    assert caught.value.code == "transparency_failed"


@pytest.mark.parametrize(("data", "words"), [(png("RGB"), "RGB, not RGBA"), (png("L"), "L, not RGBA"),
                                             (png("RGB", fmt="JPEG"), "JPEG, not PNG"),
                                             (b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
                                             (b"", "not a readable image")])
def test_not_an_rgba_png(data: bytes, words: str) -> None:
    with pytest.raises(OutputError, match=words) as caught:
        check_rgba(data)
    assert caught.value.code == "invalid_output"
