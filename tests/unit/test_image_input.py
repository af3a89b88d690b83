"""The input image of a layer job (handler/image_input.py, handler/image_fit.py): every refusal with its field and
words, the forms of the value (base64, data URIs, whitespace), the header checks made before any pixel is decoded,
EXIF orientation, modes made RGBA, the size rule, the fit (exact size, centre crop, premultiplied resampling) and
LayerDiffuse's grey matte. What decoding may cost is tests/unit/test_decode_bounds.py's. Images are made here with
PIL; no binary fixture."""

from __future__ import annotations

import base64
import binascii
import io
import math
import struct
import warnings
import zlib
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from handler import image_input
from handler.errors import InputError
from handler.image_fit import fitted, flatten, target_size, upload_png
from handler.image_input import MAX_BASE64_CHARS, MAX_IMAGE_BYTES, MAX_PIXELS, MIN_SIDE, decode, parse
from tests.layer_images import png_chunk, png_with

# The shipped workflow's sizes (README, "The API"), in its order.
SIZES = [
    *((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216)),
    *((1344, 768), (768, 1344), (1536, 640), (640, 1536)),
]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encoded(image: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cutout(size: tuple[int, int] = (96, 80)) -> Image.Image:
    """An RGBA subject: an opaque red square on transparent green, with a soft step between."""
    width, height = size
    pixels = np.zeros((height, width, 4), np.uint8)
    pixels[...] = (0, 255, 0, 0)
    pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = (255, 0, 0, 255)
    pixels[height // 4 - 2 : height // 4, width // 4 : 3 * width // 4] = (255, 0, 0, 100)
    return Image.fromarray(pixels, "RGBA")


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` RGBA, with no pixel data: costs nothing to build."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def refused(value: Any, words: str, *, field: str = "background", need_alpha: bool = False) -> str:
    """Refused by the request's parse, or by the job's decode after it."""
    with pytest.raises(InputError) as caught:
        decode(parse(value, field, need_alpha=need_alpha))
    error = caught.value
    assert error.field == field and error.code == "invalid_input"
    assert error.message.startswith(f"'{field}' "), error.message
    assert words in error.message, error.message
    return error.message


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


# --- the value: type, length, base64, data URIs ---


@pytest.mark.parametrize(
    ("value", "got"), [(None, "null"), (5, "an integer"), (True, "a boolean"), ({}, "an object"), (b"AA==", "bytes")]
)
def test_not_a_string_is_refused(value: Any, got: str) -> None:
    refused(value, f"must be a string (base64, or a data:image/...;base64 URI), got {got}")


@pytest.mark.parametrize("value", ["", "   \n", "data:image/png;base64,", "data:image/png;base64,\n"])
def test_empty_is_refused(value: str) -> None:
    refused(value, "is empty")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not base64!!", "is not valid base64 (Only base64 data is allowed)"),
        ("iVBORw0KGgo", "is not valid base64"),  # missing padding
        ("AA=A", "is not valid base64 (Discontinuous padding not allowed)"),
        ("AA==AA==", "is not valid base64"),  # data after the padding
        ("-_-_", "is not valid base64"),  # the URL-safe alphabet
        ("ÄÄÄÄ", "is not valid base64"),  # not ASCII
    ],
)
def test_invalid_base64_is_refused(value: str, words: str) -> None:
    refused(value, words)


def test_the_length_limit_comes_before_any_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an over-long value")

    monkeypatch.setattr(binascii, "a2b_base64", never)
    monkeypatch.setattr(base64, "b64decode", never)
    message = refused("A" * (MAX_BASE64_CHARS + 1), f"is {MAX_BASE64_CHARS + 1} characters long")
    assert f"the limit is {MAX_BASE64_CHARS}" in message and f"{MAX_IMAGE_BYTES} bytes, 6 MiB" in message


def test_the_limits_fit_runpods_payload() -> None:
    assert MAX_IMAGE_BYTES == 6 * 2**20
    assert MAX_BASE64_CHARS - len("data:image/jpeg;base64,") >= 4 * math.ceil(MAX_IMAGE_BYTES / 3)
    assert MAX_BASE64_CHARS + 100_000 < 10 * 10**6  # room for the rest of the JSON under /run's 10 MB


def test_an_image_of_exactly_the_byte_limit_passes_the_size_checks() -> None:
    # MAX_IMAGE_BYTES of zeros as a data URI: past the length and byte limits, refused only as not an image.
    refused("data:image/jpeg;base64," + b64(bytes(MAX_IMAGE_BYTES)), "is not an image")


def test_a_real_image_over_the_byte_limit_is_refused_by_its_length() -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (1300, 1300, 4), dtype=np.uint8), "RGBA")
    data = encoded(noise, compress_level=1)
    assert len(data) > MAX_IMAGE_BYTES
    refused("data:image/png;base64," + b64(data), f"the limit is {MAX_BASE64_CHARS} (an image of at most")


def test_decoded_bytes_over_the_limit_are_refused() -> None:
    # The length limit leaves room for a data URI's prefix, so plain base64 that long decodes to a few bytes over.
    value = "A" * (MAX_BASE64_CHARS // 4 * 4)
    refused(value, f"is {len(value) // 4 * 3} bytes; the limit is {MAX_IMAGE_BYTES} (6 MiB)")


@pytest.mark.parametrize(
    ("prefix", "fmt"),
    [
        ("", "PNG"),
        ("data:image/png;base64,", "PNG"),
        ("DATA:IMAGE/PNG;BASE64,", "PNG"),
        ("data:image/jpeg;base64,", "JPEG"),
        ("data:image/jpg;base64,", "JPEG"),
        ("data:image/webp;base64,", "WEBP"),
        ("data:image/png;base64,", "JPEG"),  # the claimed type is not the format: the content decides
        ("data:image/webp;base64,", "PNG"),
    ],
)
def test_plain_base64_and_data_uris_are_taken(prefix: str, fmt: str) -> None:
    data = encoded(Image.new("RGB", (80, 64), (200, 100, 50)), fmt)
    image = parse(prefix + b64(data), "background", need_alpha=False)
    assert image.format == {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}[fmt]
    assert (image.size, decode(image).mode, image.size_bytes, image.has_alpha) == ((80, 64), "RGBA", len(data), False)
    assert np.abs(pixels(decode(image))[32, 40] - (200, 100, 50, 255)).max() <= 3  # lossy JPEG: about the colour


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("data:image/gif;base64,R0lGODlh", "is a data URI of type 'image/gif'; only image/png, image/jpeg, image/webp"),
        ("data:text/plain;base64,aGVsbG8=", "of type 'text/plain'"),
        ("data:;base64,aGVsbG8=", "of type ''"),
        ("data:image/png,%89PNG", "is a data URI that is not ';base64'"),
        ("data:image/png;charset=utf-8;base64,aGVsbG8=", "is a data URI that is not ';base64'"),
        ("data:image/png;base64", "is not a valid data URI"),
    ],
)
def test_other_data_uris_are_refused(value: str, words: str) -> None:
    refused(value, words)


def test_whitespace_in_the_base64_is_tolerated() -> None:
    data = encoded(cutout())
    text = b64(data)
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))  # as GNU base64 writes it
    for value in (wrapped, wrapped.replace("\n", "\r\n"), f"  {text}\n", "data:image/png;base64,\n" + wrapped):
        image = parse(value, "foreground", need_alpha=True)
        assert image.size_bytes == len(data) and np.array_equal(pixels(decode(image)), pixels(cutout()))


# --- the content: format, header, load ---


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_other_image_formats_are_named(fmt: str, name: str) -> None:
    data = encoded(Image.new("RGB", (64, 64), RED), fmt)
    refused(b64(data), f"is not a PNG, JPEG or WebP image (found {name})")


@pytest.mark.parametrize("data", [b"hello, I am a file named picture.png\n", b"BM but a text", bytes(100)])
def test_a_file_that_is_no_image_is_refused(data: bytes) -> None:
    refused("data:image/png;base64," + b64(data), "is not an image; it must be a PNG, JPEG or WebP file")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_images_are_refused(fmt: str, keep: float) -> None:
    data = encoded(Image.effect_noise((128, 128), 64).convert("RGB"), fmt)
    refused(b64(data[: int(len(data) * keep)]), "is truncated or corrupt")


def test_a_png_cut_inside_its_header_is_corrupt_not_foreign() -> None:
    refused(b64(encoded(cutout())[:40]), "is truncated or corrupt")


@pytest.mark.parametrize("side", [30_000, 10_000])  # over PIL's error limit; between its warning and error limits
def test_a_decompression_bomb_is_refused_and_pil_never_warns(side: int) -> None:
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refused(b64(png_header(side, side)), f"has over {Image.MAX_IMAGE_PIXELS} pixels; the limit is {MAX_PIXELS}")
    assert caught == []
    assert warnings.filters == filters  # the filter made for PIL's check did not stay behind


def test_pixels_over_the_limit_are_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = encoded(Image.new("1", (6000, 5000)))  # 30 MP, a few kB
    assert len(bomb) < 10_000

    def never(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded the pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    refused(b64(bomb), f"is 6000x5000 (30000000 pixels); the limit is {MAX_PIXELS} pixels")


def test_the_pixel_limit_is_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_input, "MAX_PIXELS", 100 * 100)
    assert parse(b64(encoded(Image.new("RGB", (100, 100)))), "background", need_alpha=False).size == (100, 100)
    refused(b64(encoded(Image.new("RGB", (101, 100)))), "is 101x100 (10100 pixels); the limit is 10000 pixels")


@pytest.mark.parametrize(("size", "ok"), [((1, 1), False), ((64, 63), False), ((63, 2000), False), ((64, 64), True)])
def test_each_side_must_be_at_least_min_side(size: tuple[int, int], ok: bool) -> None:
    value = b64(encoded(Image.new("RGB", size)))
    if ok:
        assert parse(value, "background", need_alpha=False).size == size
    else:
        refused(value, f"is {size[0]}x{size[1]}; each side must be at least {MIN_SIDE} pixels")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animated_image_is_refused(fmt: str) -> None:
    frames = [Image.new("RGBA", (64, 64), colour) for colour in ((*RED, 255), (*GREEN, 128))]
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:])
    refused(b64(data), "is animated (2 frames); send a still image")


def test_a_jpeg_with_a_second_picture_gives_its_first() -> None:
    data = encoded(Image.new("RGB", (64, 64), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (64, 64))])
    image = parse(b64(data), "background", need_alpha=False)
    assert image.format == "jpeg" and np.abs(pixels(decode(image))[32, 32] - (*RED, 255)).max() <= 3


def test_exif_orientation_is_applied_before_the_size_rules() -> None:
    photo = Image.new("RGB", (200, 100), RED)
    photo.paste(BLUE, (100, 0, 200, 100))  # left red, right blue as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to show it
    image = parse(b64(encoded(photo, "JPEG", exif=exif.tobytes())), "background", need_alpha=False)
    assert image.size == (100, 200)
    shown = pixels(decode(image))
    assert np.abs(shown[40, 50] - (*RED, 255)).max() <= 3 and np.abs(shown[160, 50] - (*BLUE, 255)).max() <= 3
    assert target_size(image.size, SIZES, None, "background") == (768, 1344)  # portrait, as shown
    assert decode(image).info == {}  # the orientation is not there to be applied twice


@pytest.mark.parametrize("after_pixels", [False, True])
def test_a_pngs_exif_orientation_is_read_wherever_its_chunk_is(after_pixels: bool) -> None:
    """PIL reads an eXIf chunk after the pixels only as it loads them; the parse finds it without decoding."""
    photo = Image.new("RGB", (200, 100), RED)
    photo.paste(BLUE, (100, 0, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to show it: the blue right half goes on top
    png = encoded(photo)
    data = png_with(png, png_chunk(b"eXIf", exif.tobytes()), after_pixels=after_pixels)
    image = parse(b64(data), "background", need_alpha=False)
    assert image.size == (100, 200)
    shown = pixels(decode(image))
    assert np.abs(shown[40, 50] - (*BLUE, 255)).max() == 0 and np.abs(shown[160, 50] - (*RED, 255)).max() == 0


def test_the_image_keeps_its_file_out_of_its_repr() -> None:
    image = parse(b64(encoded(cutout())), "foreground", need_alpha=True)
    assert "data=" not in repr(image) and "b'" not in repr(image) and "size=(96, 80)" in repr(image)


# --- modes ---


def test_modes_become_rgba_and_transparency_is_kept() -> None:
    palette = Image.new("P", (64, 64), 1)
    palette.putpalette([*GREEN, *RED])
    palette.putpixel((0, 0), 0)
    grey_trns = Image.new("RGB", (64, 64), (10, 20, 30))
    grey_trns.putpixel((0, 0), (1, 1, 1))
    cases = {
        "P + tRNS": (encoded(palette, transparency=0), True, (*GREEN, 0), (*RED, 255)),
        "RGB + tRNS": (encoded(grey_trns, transparency=(1, 1, 1)), True, (1, 1, 1, 0), (10, 20, 30, 255)),
        "L": (encoded(Image.new("L", (64, 64), 77)), False, (77, 77, 77, 255), (77, 77, 77, 255)),
        "LA": (encoded(Image.new("LA", (64, 64), (77, 0))), True, (77, 77, 77, 0), (77, 77, 77, 0)),
        "CMYK JPEG": (encoded(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"), False, RED, RED),
    }
    for name, (data, has_alpha, first, other) in cases.items():
        image = parse(b64(data), "background", need_alpha=False)
        assert (decode(image).mode, image.has_alpha) == ("RGBA", has_alpha), name
        assert np.abs(pixels(decode(image))[0, 0][: len(first)] - first).max() <= 2, name
        assert np.abs(pixels(decode(image))[5, 5][: len(other)] - other).max() <= 2, name


def test_16_bit_grey_keeps_its_high_byte_and_its_trns() -> None:
    grey = Image.new("I;16", (64, 64), 0x8000)
    grey.putpixel((0, 0), 0x1234)
    image = parse(b64(encoded(grey, transparency=0x1234)), "background", need_alpha=False)
    assert image.has_alpha
    assert tuple(pixels(decode(image))[0, 0]) == (0x12, 0x12, 0x12, 0)
    assert tuple(pixels(decode(image))[1, 1]) == (0x80, 0x80, 0x80, 255)  # PIL's own convert gives white
    plain = parse(b64(encoded(grey)), "background", need_alpha=False)
    assert not plain.has_alpha and tuple(pixels(decode(plain))[0, 0]) == (0x12, 0x12, 0x12, 255)


# --- a foreground must be a cut-out ---


@pytest.mark.parametrize(
    ("image", "fmt", "words"),
    [
        (Image.new("RGB", (64, 64), RED), "JPEG", "has no alpha channel (a JPEG cannot have one); it must be a "),
        (Image.new("RGB", (64, 64), RED), "PNG", "has no alpha channel; it must be a transparent RGBA PNG or WebP"),
        (Image.new("RGB", (64, 64), RED), "WEBP", "has no alpha channel; it must be a transparent RGBA PNG or WebP"),
        (Image.new("RGBA", (64, 64), (*RED, 255)), "PNG", "is fully opaque (every pixel's alpha is 255)"),
        (Image.new("RGBA", (64, 64), (*RED, 0)), "PNG", "is fully transparent (every pixel's alpha is 0)"),
        (Image.new("RGBA", (64, 64), (*RED, 128)), "PNG", "has a constant alpha 128 (every pixel's alpha is 128)"),
    ],
)
def test_a_foreground_without_varying_alpha_is_refused(image: Image.Image, fmt: str, words: str) -> None:
    refused(b64(encoded(image, fmt)), words, field="foreground", need_alpha=True)


def test_a_foreground_cutout_is_taken_and_a_background_may_be_opaque() -> None:
    for fmt in ("PNG", "WEBP"):
        params = {"lossless": True} if fmt == "WEBP" else {}
        image = parse(b64(encoded(cutout(), fmt, **params)), "foreground", need_alpha=True)
        assert image.has_alpha and tuple(pixels(decode(image))[40, 48]) == (*RED, 255)
    opaque = parse(b64(encoded(Image.new("RGBA", (64, 64), (*RED, 255)))), "background", need_alpha=False)
    assert opaque.has_alpha and decode(opaque).getchannel("A").getextrema() == (255, 255)


# --- the size rule ---


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1600, 900), (1344, 768)),
        ((900, 1600), (768, 1344)),
        ((1024, 1024), (1024, 1024)),
        ((64, 64), (1024, 1024)),
        ((4000, 3000), (1152, 896)),  # 1.33: log distance 0.036 to 1.29, 0.092 to 1.46
        ((3000, 4000), (896, 1152)),
        ((6000, 1000), (1536, 640)),  # beyond every allowed aspect: the widest
        ((1400, 1000), (1216, 832)),  # 1.40: 0.042 to 1.46, 0.085 to 1.29
    ],
)
def test_the_nearest_aspect_is_picked(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert target_size(size, SIZES, None, "background") == expected
    assert target_size(size, SIZES, expected, "background") == expected


def test_a_tie_goes_to_the_first_in_order_and_a_requested_tie_is_taken() -> None:
    # A square sits exactly between 1152x896 and 896x1152 (log 1.2857 = -log 0.7778).
    pair = [(1152, 896), (896, 1152)]
    assert target_size((500, 500), pair, None, "foreground") == (1152, 896)
    assert target_size((500, 500), pair[::-1], None, "foreground") == (896, 1152)
    assert target_size((500, 500), pair, (896, 1152), "foreground") == (896, 1152)


def test_a_requested_size_that_does_not_fit_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        target_size((1600, 900), SIZES, (1024, 1024), "background")
    assert caught.value.field == "background"
    assert caught.value.message == (
        "'background' is 1600x900 (aspect 1.78), which fits 1344x768; it does not fit the requested 1024x1024: "
        "crop it, or omit width/height"
    )


# --- the fit ---


def given(image: Image.Image) -> Image.Image:
    """The image as the job decodes it."""
    return decode(parse(b64(encoded(image)), "background", need_alpha=False))


@pytest.mark.parametrize(
    ("source", "size"),
    [((1600, 900), (1344, 768)), ((333, 777), (1024, 1024)), ((64, 64), (1536, 640)), ((1001, 999), (832, 1216))],
)
def test_fitted_is_exactly_the_size(source: tuple[int, int], size: tuple[int, int]) -> None:
    for image in (given(Image.new("RGB", source, RED)), given(cutout(source))):
        out = fitted(image, size)
        assert (out.size, out.mode) == (size, "RGBA")


@pytest.mark.parametrize("tall", [False, True])
def test_fitted_crops_the_centre(tall: bool) -> None:
    # 300x100, left half red and right half blue: the centred square is 100..200, split at its middle. A crop
    # from the left would be all red.
    stripes = Image.new("RGB", (300, 100), RED)
    stripes.paste(BLUE, (150, 0, 300, 100))
    if tall:
        stripes = stripes.transpose(Image.Transpose.ROTATE_270)  # top red, bottom blue
    out = pixels(fitted(given(stripes), (100, 100)))
    if tall:
        out = out.transpose(1, 0, 2)
    assert np.abs(out[:, :46] - (*RED, 255)).max() <= 2
    assert np.abs(out[:, 54:] - (*BLUE, 255)).max() <= 2


def test_fitted_at_the_same_size_is_the_image() -> None:
    image = given(cutout((64, 64)))
    assert np.array_equal(pixels(fitted(image, (64, 64))), pixels(image))


def test_fitted_resamples_premultiplied() -> None:
    # Left half transparent green, right half opaque red. Resampled straight, the green under alpha 0 bleeds into
    # the edge pixels, which have some alpha; premultiplied, it weighs nothing.
    half = Image.new("RGBA", (64, 64), (*GREEN, 0))
    half.paste((*RED, 255), (32, 0, 64, 64))
    out = pixels(fitted(given(half), (24, 24)))
    visible = out[..., 3] > 0
    assert visible[:, 10:14].any() and not visible.all()  # the edge is in there, with partial alpha
    assert out[visible][:, 1].max() == 0  # no green anywhere visible


def test_an_opaque_image_is_resampled_as_the_premultiplied_path_would() -> None:
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), "RGB")
    for image in (given(photo), given(photo.convert("RGBA"))):  # no alpha; an alpha of 255 everywhere
        straight = image.convert("RGBa").resize((64, 64), Image.Resampling.LANCZOS, box=(35.0, 0.0, 125.0, 90.0))
        assert np.array_equal(pixels(fitted(image, (64, 64))), pixels(straight.convert("RGBA")))


def test_an_opaque_file_is_fitted_from_rgb_as_from_rgba() -> None:
    """upload_png decodes a file without alpha to RGB (a 25 MP RGBA copy is 100 MB more); the fit is the same."""
    rng = np.random.default_rng(4)
    photo = Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), "RGB")
    image = parse(b64(encoded(photo)), "background", need_alpha=False)
    cut = parse(b64(encoded(cutout())), "foreground", need_alpha=True)
    assert (decode(image, rgba=False).mode, decode(image).mode, decode(cut, rgba=False).mode) == ("RGB", "RGBA", "RGBA")
    for size in ((64, 64), (160, 90)):
        assert np.array_equal(pixels(fitted(decode(image, rgba=False), size)), pixels(fitted(decode(image), size)))


# --- the matte ---


def literal_layerdiffuse(rgba: np.ndarray) -> np.ndarray:
    """lib_layerdiffusion/utils.py: to255unit8(rgba2rgbfp32(x)), as written there (float32)."""
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return ((0.5 + (rgb - 0.5) * alpha) * 255.0).clip(0, 255).astype(np.uint8)


def every_value_and_alpha() -> np.ndarray:
    values, alphas = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    return np.dstack([values, values, values, alphas]).astype(np.uint8)  # row v, column A


def test_flatten_is_the_matte_formula_truncated_exactly() -> None:
    grid = every_value_and_alpha()
    flat = pixels(flatten(Image.fromarray(grid, "RGBA")))
    half = Fraction(1, 2)
    for v, a in ((0, 0), (255, 0), (255, 128), (0, 128), (200, 77), (13, 255), (255, 255)):
        exact = (half + (Fraction(v, 255) - half) * Fraction(a, 255)) * 255
        assert flat[v, a, 0] == math.floor(exact), (v, a)
    assert (flat[:, 0] == 127).all()  # alpha 0: the matte, 127.5 truncated
    assert flat[255, 128, 0] == 191 and flat[0, 128, 0] == 63
    assert (flat[:, 255, 0] == np.arange(256)).all()  # alpha 255: unchanged
    # LayerDiffuse's float32 code is 1 less in 233 of the 65,536 cases (opaque 1..63 among them), never else.
    difference = flat[..., 0] - literal_layerdiffuse(grid)[..., 0]
    assert set(np.unique(difference)) == {0, 1} and (difference == 1).sum() == 233


def test_flatten_leaves_an_opaque_image_unchanged() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for image in (Image.fromarray(rgb, "RGB"), Image.fromarray(rgb, "RGB").convert("RGBA")):
        out = flatten(image)
        assert out.mode == "RGB" and np.array_equal(np.asarray(out), rgb)


def test_upload_png_is_the_fitted_flattened_image() -> None:
    image = parse(b64(encoded(cutout((300, 200)))), "foreground", need_alpha=True)
    data = upload_png(image, (1216, 832))
    with Image.open(io.BytesIO(data)) as uploaded:
        assert (uploaded.format, uploaded.mode, uploaded.size) == ("PNG", "RGB", (1216, 832))
        assert np.array_equal(pixels(uploaded), pixels(flatten(fitted(decode(image), (1216, 832)))))
        assert "icc_profile" not in uploaded.info and "exif" not in uploaded.info
        assert tuple(pixels(uploaded)[5, 5]) == (127, 127, 127)  # the transparent ground is the grey matte
