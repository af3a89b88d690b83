"""The asset options on decoded images: trim (box, margin, clipping at the canvas edge, subjects at the border and
of one pixel), lossless WebP (alpha exact, RGB exact wherever alpha > 0, and what libwebp does under alpha 0),
and the untouched PNG when nothing is asked."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from handler import results
from handler.asset import WEBP_OPTIONS, Shape, crop_box, make
from handler.png import Box, check_alpha, decode
from tests.helpers import rgba

SIZE = (96, 64)  # width, height: not square, so a swapped axis shows


def canvas(box: Box, seed: int = 1) -> tuple[bytes, np.ndarray]:
    """An RGBA PNG whose visible pixels fill exactly ``box``: random colours and alphas 1..255 inside, alpha 0
    outside but random colours there too (as LayerDiffuse's decoder leaves them)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (SIZE[1], SIZE[0], 4), dtype=np.uint8)
    pixels[..., 3] = 0
    left, top, right, bottom = box
    pixels[top:bottom, left:right, 3] = rng.integers(1, 256, (bottom - top, right - left), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue(), pixels


def shaped(png: bytes, shape: Shape) -> tuple[bytes, dict[str, object]]:
    image = decode(png)
    stats = check_alpha(image, max_uniform=1.0)
    asset = make(png, image, stats, shape)
    return asset.data, {"format": asset.format, "crop": asset.crop, "alpha": asset.alpha, "mime": asset.mime_type}


@pytest.mark.parametrize(
    ("bbox", "margin", "expected"),
    [
        ((10, 20, 30, 40), 0, (10, 20, 30, 40)),
        ((10, 20, 30, 40), 5, (5, 15, 35, 45)),
        ((10, 20, 30, 40), 512, (0, 0, 96, 64)),  # clipped on every side
        ((0, 0, 96, 64), 3, (0, 0, 96, 64)),  # the subject fills the canvas
        ((90, 0, 96, 4), 8, (82, 0, 96, 12)),  # touching the top-right corner: clipped there only
        ((50, 30, 51, 31), 0, (50, 30, 51, 31)),  # one pixel
        ((50, 30, 51, 31), 2, (48, 28, 53, 33)),
    ],
)
def test_crop_box(bbox: Box, margin: int, expected: Box) -> None:
    assert crop_box(bbox, margin, SIZE) == expected


@pytest.mark.parametrize(
    ("box", "margin"),
    [((10, 20, 30, 40), 0), ((10, 20, 30, 40), 6), ((0, 10, 96, 20), 4), ((95, 63, 96, 64), 0), ((40, 0, 41, 1), 3)],
    ids=["inner", "margin", "border-to-border", "one-pixel-corner", "one-pixel-top-margin"],
)
@pytest.mark.parametrize("format", ["png", "webp"])
def test_trim_cuts_the_visible_box_with_its_margin(box: Box, margin: int, format: str) -> None:
    png, pixels = canvas(box)
    data, facts = shaped(png, Shape(format, trim=True, margin=margin))
    crop = crop_box(box, margin, SIZE)
    assert facts["crop"] == crop
    left, top, right, bottom = crop
    got = rgba(data)
    assert got.shape == (bottom - top, right - left, 4)
    expected = pixels[top:bottom, left:right]
    assert np.array_equal(got[..., 3], expected[..., 3]), "alpha exact"
    visible = expected[..., 3] > 0
    assert np.array_equal(got[visible], expected[visible]), "RGBA exact wherever alpha > 0"
    alpha = facts["alpha"]
    assert alpha.bbox == box, "bbox: the visible pixels on the generated canvas"  # type: ignore[attr-defined]
    assert (alpha.width, alpha.height) == (right - left, bottom - top)  # type: ignore[attr-defined]
    assert alpha.transparent == round(float((expected[..., 3] == 0).mean()), 6)  # type: ignore[attr-defined]


def test_nothing_asked_returns_comfyuis_bytes_as_they_are() -> None:
    png, _ = canvas((10, 20, 30, 40))
    data, facts = shaped(png, Shape())
    assert data is png and facts["crop"] is None and facts["mime"] == "image/png"
    assert facts["alpha"].bbox == (10, 20, 30, 40)  # type: ignore[attr-defined]


def test_a_trim_that_cuts_nothing_keeps_the_png_bytes() -> None:
    png, _ = canvas((0, 0, 96, 64))
    data, facts = shaped(png, Shape(trim=True, margin=2))
    assert data is png and facts["crop"] == (0, 0, 96, 64)


def test_webp_is_lossless_where_it_shows_and_drops_rgb_under_alpha_0() -> None:
    """Lossless WebP with ``exact`` off: alpha exact everywhere, RGB exact wherever alpha > 0; under alpha 0
    libwebp writes what compresses best (here: the random colours are gone)."""
    png, pixels = canvas((10, 20, 30, 40))
    data, facts = shaped(png, Shape("webp"))
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and facts["mime"] == "image/webp"
    assert facts["crop"] is None and WEBP_OPTIONS["lossless"] is True
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP" and image.mode == "RGBA"
        got = np.asarray(image)
    visible = pixels[..., 3] > 0
    assert np.array_equal(got[..., 3], pixels[..., 3])
    assert np.array_equal(got[visible], pixels[visible])
    hidden_changed = (got[~visible][:, :3] != pixels[~visible][:, :3]).any(axis=1).mean()
    assert hidden_changed > 0.9, "RGB under alpha 0 is not kept (WEBP_OPTIONS exact=False)"


def test_webp_of_noise_keeps_every_pixel() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    pixels[..., 3] = rng.integers(1, 256, (64, 64), dtype=np.uint8)  # no alpha 0: every RGB must survive
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    data, _ = shaped(buffer.getvalue(), Shape("webp"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)


def test_an_opaque_webp_has_no_alpha_channel() -> None:
    """libwebp leaves the alpha channel out when every pixel is opaque (a trim of an opaque subject, no margin):
    decoders read it as RGB, which shows the same (README, "Asset options")."""
    _, pixels = canvas((10, 20, 30, 40))
    pixels[20:40, 10:30, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    data, facts = shaped(buffer.getvalue(), Shape("webp", trim=True))
    with Image.open(io.BytesIO(data)) as image:
        assert (image.mode, image.size) == ("RGB", (20, 20))
        assert np.array_equal(np.asarray(image), pixels[20:40, 10:30, :3])
    assert facts["alpha"].opaque == 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("format", ["png", "webp"])
@pytest.mark.parametrize("shape", [(False, 0), (True, 0), (True, 7)], ids=["whole", "trim", "trim-margin"])
def test_an_opaque_layer_takes_every_asset_option(format: str, shape: tuple[bool, int]) -> None:
    """Mode ``background``'s main image is opaque RGB (no alpha channel): every pixel is visible, so a trim cuts
    nothing, and its alpha figures are those of a flat 255 (results.canvas measures it the same way)."""
    pixels = np.random.default_rng(5).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    png = buffer.getvalue()
    image = decode(png, rgba=False)
    stats = results.canvas(image, opaque=True, max_uniform=0.999)
    trim, margin = shape
    asset = make(png, image, stats, Shape(format, trim, margin))
    with Image.open(io.BytesIO(asset.data)) as got:
        assert (got.format, got.mode, got.size) == (format.upper(), "RGB", SIZE)
        assert np.array_equal(np.asarray(got), pixels), "lossless, and nothing cut"
    assert asset.crop == ((0, 0, *SIZE) if trim else None)
    assert (asset.alpha.width, asset.alpha.height, asset.alpha.opaque) == (*SIZE, 1.0)
    assert asset.alpha.bbox == (0, 0, *SIZE) and asset.alpha.alpha_min == 255
