"""What a layer job's input image may cost the worker (issue 25): what decoding would cost beyond the pixels is read
from the container and refused before PIL reads it (a JPEG's scans and marker segments, a PNG's chunks, an
animation's frames); the pixels are decoded in the job, in the worker's pool of two, within the job's deadline and
cancel, and after the alpha API's slot is taken; a request keeps the file's bytes, never its pixels; PIL's warnings
are logged with the job's id; refusals name the real cause (a PNG metadata chunk over PIL's limits, a WAVE file).

The files are built here from PIL's output (tests/layer_images.py); ComfyUI is not needed (its port is closed: a
job that gets past its image ends in ``comfyui_unavailable``)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from handler import image_input, logs
from handler.doors.alpha.server import SLOTS, create_app
from handler.doors.runpod.worker import handle_job
from handler.errors import InputError
from handler.generate import Generator
from handler.image_input import MAX_IMAGE_BYTES, parse
from handler.request import Request
from handler.settings import Settings
from tests.helpers import ServerThread, assert_error, free_port, http
from tests.layer_images import foreground, offline, png_chunk, png_with, repeated_scans, saved, with_segments

BLUE = (40, 90, 200)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refused(data: bytes, words: str, *, decoding: bool = False, field: str = "background") -> None:
    """Refused with ``words`` by the request's parse or, ``decoding``, by the job's decode that follows it."""
    with pytest.raises(InputError) as caught:
        image = parse(b64(data), field, need_alpha=False)
        if decoding:
            image_input.decode(image)
    assert (caught.value.code, caught.value.field) == ("invalid_input", field)
    assert caught.value.message.startswith(f"'{field}' ") and words in caught.value.message, caught.value.message


def taken(data: bytes) -> tuple[int, int]:
    """The size of the decoded image: taken by the parse and the decode."""
    size: tuple[int, int] = image_input.decode(parse(b64(data), "background", need_alpha=False)).size
    return size


def never(stage: str) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"PIL {stage} the file")

    return fail


@pytest.fixture
def never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile.ImageFile, "load", never("decoded"))


@pytest.fixture
def never_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "open", never("opened"))


# --- a JPEG's scans and marker segments ---


@pytest.mark.usefixtures("never_decoded")
@pytest.mark.parametrize(("side", "repeats"), [(64, 200), (5000, 10_000)])  # the second: the 0.6 MB file
def test_a_jpeg_of_repeated_scans_is_refused_before_decoding(side: int, repeats: int) -> None:
    data = repeated_scans(Image.new("RGB", (side, side), BLUE), repeats)
    assert len(data) < MAX_IMAGE_BYTES
    refused(data, "is a JPEG of over 100 scans, each decoded over every pixel; re-save it")


@pytest.mark.usefixtures("never_decoded")
def test_scans_times_pixels_over_the_limit_is_refused_before_decoding() -> None:
    data = repeated_scans(Image.new("RGB", (3000, 3000), BLUE), 74)  # libjpeg's 10 scans and 74 more
    refused(
        data,
        "is a 3000x3000 JPEG of 84 scans, each decoded over every pixel: 756000000 scan-pixels; the limit is "
        "750000000 (scans x pixels): re-save it as baseline, or smaller",
    )


def test_the_scan_limits_are_inclusive_and_libjpegs_own_progressions_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in ("RGB", "L", "CMYK"):  # jpeg_simple_progression's scripts: 10, 6 and 18 scans
        image = parse(b64(repeated_scans(Image.new(mode, (100, 80)), 0)), "background", need_alpha=False)
        assert image.format == "jpeg" and image.size == (100, 80), mode
    small = Image.new("RGB", (64, 64), BLUE)
    assert taken(repeated_scans(small, 90)) == (64, 64)
    refused(repeated_scans(small, 91), "is a JPEG of over 100 scans")
    monkeypatch.setattr(image_input, "MAX_JPEG_SCAN_PIXELS", 12 * 64 * 64)
    assert parse(b64(repeated_scans(small, 2)), "background", need_alpha=False).size == (64, 64)  # 12 scans
    refused(repeated_scans(small, 3), "JPEG of 13 scans, each decoded over every pixel: 53248 scan-pixels")


@pytest.mark.parametrize("count", [992, 1_570_000])  # with a baseline file's 9: just over the limit; 6 MiB
@pytest.mark.usefixtures("never_opened")
def test_a_jpeg_of_many_marker_segments_is_refused_before_pil_reads_them(count: int) -> None:
    data = with_segments(saved(Image.new("RGB", (64, 64), BLUE), "JPEG"), count)
    assert len(data) < MAX_IMAGE_BYTES
    refused(data, "is a JPEG of over 1000 marker segments; re-save it")


def test_a_jpeg_of_a_few_hundred_segments_is_taken() -> None:
    data = with_segments(saved(Image.new("RGB", (64, 64), BLUE), "JPEG"), 991)  # 1000 with its own
    assert taken(data) == (64, 64)


# --- a PNG's chunks and metadata, a RIFF file that is not WebP ---


@pytest.mark.parametrize(("count", "after_pixels"), [(10_000, False), (524_000, False), (10_000, True)])
@pytest.mark.usefixtures("never_opened")
def test_a_png_of_many_chunks_is_refused_before_pil_reads_them(count: int, after_pixels: bool) -> None:
    png = saved(Image.new("RGB", (64, 64), BLUE))  # IHDR, IDAT, IEND
    data = png_with(png, png_chunk(b"prVt", b"") * count, after_pixels=after_pixels)
    assert len(data) < MAX_IMAGE_BYTES
    refused(data, "is a PNG of over 10000 chunks; re-save it")


def test_a_png_of_a_few_thousand_chunks_is_taken() -> None:
    data = png_with(saved(Image.new("RGB", (64, 64), BLUE)), png_chunk(b"prVt", b"") * 9_997)
    assert taken(data) == (64, 64)


BIG_TEXT = b"k\0\0" + zlib.compress(bytes(2_000_000))  # keyword, compression method: 2 MB of text


@pytest.mark.parametrize(
    ("chunks", "after_pixels", "words"),
    [
        (png_chunk(b"zTXt", BIG_TEXT), False, "has a compressed PNG metadata chunk (zTXt, iTXt or iCCP) that "),
        (png_chunk(b"zTXt", BIG_TEXT), True, "expands to over 1048576 bytes; remove the metadata"),
        (png_chunk(b"iCCP", BIG_TEXT), False, "expands to over 1048576 bytes; remove the metadata"),
        (
            png_chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(1_000_000))) * 70,
            False,
            "has over 67108864 bytes of PNG text metadata",
        ),
    ],
)
def test_png_metadata_over_pils_limits_is_named(chunks: bytes, after_pixels: bool, words: str) -> None:
    data = png_with(saved(Image.new("RGB", (64, 64), BLUE)), chunks, after_pixels=after_pixels)
    refused(data, words, decoding=after_pixels)  # after the pixels, PIL reads it as it loads them


def test_an_unreadable_exif_block_is_named() -> None:
    data = png_with(saved(Image.new("RGB", (64, 64), BLUE)), png_chunk(b"eXIf", b"garbage!"))  # no TIFF header
    refused(data, "has EXIF metadata that cannot be read")


@pytest.mark.parametrize(
    ("form", "name"), [(b"WAVE", "WAVE audio"), (b"AVI ", "AVI video"), (b"RMID", "a RIFF 'RMID'")]
)
def test_a_riff_file_that_is_not_webp_is_named(form: bytes, name: str) -> None:
    data = b"RIFF" + struct.pack("<I", 36) + form + b"fmt " + struct.pack("<I", 16) + bytes(16) + b"data" + bytes(4)
    refused(data, f"is not a PNG, JPEG or WebP image (found {name}")


@pytest.mark.usefixtures("never_decoded")
@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animation_of_many_frames_is_refused_from_its_header(fmt: str) -> None:
    """A guard, true before issue 25 too: the frame count comes from the header (acTL, the WebP's frame chunks)."""
    frames = [Image.new("RGB", (64, 64), (i % 256, i // 256, 0)) for i in range(300)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], lossless=True)
    refused(buffer.getvalue(), "is animated (300 frames); send a still image")


# --- the decode, in the job ---


def settings(tmp_path: Path, **changes: Any) -> Settings:
    """ComfyUI's port closed: a job that gets past its image fails with comfyui_unavailable."""
    return Settings().replace(comfyui_port=free_port(), serve_dir=tmp_path / "served", **changes)


def job(image: bytes, job_id: str = "job-1") -> dict[str, Any]:
    return {"id": job_id, "input": {"prompt": "a cat", "mode": "foreground", "background": b64(image)}}


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """5000x5000 and opaque: about a second to decode and fit here, more than the deadlines below."""
    buffer = io.BytesIO()
    Image.new("RGB", (5000, 5000), BLUE).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_a_request_keeps_the_files_bytes_and_no_pixels() -> None:
    data = saved(foreground())
    image = Request.parse({"prompt": "x", "mode": "background", "foreground": b64(data)}).foreground
    assert image is not None and image.size_bytes == len(data) and image.size == (128, 128)
    assert [name for name, value in vars(image).items() if isinstance(value, Image.Image)] == []


def test_a_job_keeps_the_fitted_png_it_uploads(tmp_path: Path) -> None:
    generator = offline(Generator(settings(tmp_path)))
    request = Request.parse({"prompt": "x", "mode": "foreground", "background": b64(saved(Image.new("RGB", (96, 64))))})
    prepared = generator.prepare(request)
    assert prepared.run_size == (1216, 832) and isinstance(prepared.image, bytes)
    with Image.open(io.BytesIO(prepared.image)) as upload:
        assert (upload.format, upload.mode, upload.size) == ("PNG", "RGB", (1216, 832))


def test_the_job_deadline_bounds_the_decode(tmp_path: Path, big_png: bytes) -> None:
    generator = offline(Generator(settings(tmp_path, job_timeout_s=0.1)))
    assert_error(handle_job(generator, job(big_png)), "timeout", None, words="passed while 'background' was decoded")


def test_a_cancel_stops_the_wait_for_the_decode(tmp_path: Path, big_png: bytes) -> None:
    generator = offline(Generator(settings(tmp_path)))
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    result = handle_job(generator, job(big_png), cancel)
    assert_error(result, "cancelled", None, words="the job was cancelled while 'background' was decoded")


class LoadSpy:
    """PIL's ImageFile.load, wrapped: which threads decode at once (a nested load counts once), each held a moment
    so that every job that may decode now is seen doing it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold_s: float = 0.0) -> None:
        self.real, self.hold_s = ImageFile.ImageFile.load, hold_s
        self.depth: dict[int, int] = {}
        self.peak = self.calls = 0
        self.lock = threading.Lock()
        spy = self

        def load(image: ImageFile.ImageFile) -> Any:
            return spy.load(image)

        monkeypatch.setattr(ImageFile.ImageFile, "load", load)

    def load(self, image: ImageFile.ImageFile) -> Any:
        me = threading.get_ident()
        with self.lock:
            self.depth[me] = self.depth.get(me, 0) + 1
            self.peak, self.calls, outermost = max(self.peak, len(self.depth)), self.calls + 1, self.depth[me] == 1
        try:
            time.sleep(self.hold_s if outermost else 0)
            return self.real(image)
        finally:
            with self.lock:
                self.depth[me] -= 1
                if not self.depth[me]:
                    del self.depth[me]


def test_jobs_decode_at_most_two_images_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch, hold_s=0.2)
    generator = offline(Generator(settings(tmp_path)))
    results: list[dict[str, Any]] = []
    image = saved(Image.new("RGB", (256, 256), BLUE))
    threads = [
        threading.Thread(target=lambda i=i: results.append(handle_job(generator, job(image, f"j{i}"))))
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [r["code"] for r in results] == ["comfyui_unavailable"] * 6  # each decoded, then found ComfyUI down
    assert spy.peak == 2


def test_the_alpha_api_decodes_only_once_the_job_holds_a_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    app = create_app(offline(Generator(settings(tmp_path, job_timeout_s=0.3))))
    app[SLOTS] = asyncio.Semaphore(0)  # every slot taken
    body = json.dumps(job(saved(Image.new("RGB", (256, 256), BLUE)))["input"]).encode()
    with ServerThread(app) as server:
        reply = http("POST", f"{server.url}/alpha/v1/txt2img", body, {"Content-Type": "application/json"})
    assert_error(reply.json(), "timeout", None, words="no free job slot within the deadline")
    assert spy.calls == 0


# --- logs ---


@pytest.fixture
def worker_log() -> Iterator[io.StringIO]:
    """The worker's logging (handler.logs.configure), its stream a buffer; undone afterwards."""
    root = logging.getLogger()
    handlers, level, showwarning = root.handlers[:], root.level, warnings.showwarning
    logs.configure("INFO")
    buffer = io.StringIO()
    assert isinstance(root.handlers[0], logging.StreamHandler)
    root.handlers[0].setStream(buffer)
    try:
        yield buffer
    finally:
        warnings.showwarning = showwarning
        root.handlers[:], root.level = handlers, level


def broken_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block has a tag whose data lies past its end: PIL warns, and reads the rest."""
    entry = struct.pack(">HHII", 0x010E, 2, 100, 5000)  # ImageDescription, 100 characters at offset 5000
    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + entry + bytes(4)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), BLUE).save(buffer, format="JPEG", exif=b"Exif\x00\x00" + tiff)
    return buffer.getvalue()


def test_a_pil_warning_is_logged_with_the_job_id(tmp_path: Path, worker_log: io.StringIO) -> None:
    generator = offline(Generator(settings(tmp_path)))
    result = handle_job(generator, job(broken_exif_jpeg(), "job-exif-7"))
    assert result["code"] == "comfyui_unavailable"  # the image was taken
    err = worker_log.getvalue()
    lines = [line for line in err.splitlines() if "Tag data larger than file" in line]
    assert lines, err
    assert lines == [
        line
        for line in lines
        if " WARNING py.warnings [job job-exif-7] UserWarning: Tag data larger than file. Skipping tag 270 "
        "(PIL/TiffImagePlugin.py:" in line
    ], err
