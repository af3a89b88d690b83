"""The RunPod success output: its size guard, and the upload to an S3-compatible bucket (a fake one, served
locally) with the RunPod SDK's helper."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
import logging
import os
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from PIL import Image
from runpod.serverless.modules.rp_job import run_job

from handler.doors.runpod.payload import check_delivery, output_size, success_output
from handler.doors.runpod.worker import make_handler
from handler.errors import InputError, OutputTooLarge, UploadFailed, error_body
from handler.generate import Generator
from handler.results import Layer, Result
from handler.settings import Settings
from tests.fake_s3 import FakeS3
from tests.helpers import ServerThread, assert_error

KEY_ID = "AKIDFAKE0123456789"
SECRET = "fake-secret-" + "9" * 24
FILENAME = "alpha_" + "ab" * 16 + ".png"


def png_bytes(size: int = 64) -> bytes:
    """RGBA noise: it does not compress, so its size is about 4 * size**2 bytes."""
    image = Image.frombytes("RGBA", (size, size), os.urandom(4 * size * size))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def result(png: bytes | None = None, **info: Any) -> Result:
    return Result(image=png if png is not None else png_bytes(), filename=FILENAME, info={"seed": 1, **info})


@pytest.fixture
def s3() -> Iterator[tuple[FakeS3, ServerThread]]:
    fake = FakeS3()
    with ServerThread(fake.app()) as server:
        yield fake, server


def bucket_settings(server: ServerThread, **changes: Any) -> Settings:
    return Settings().replace(
        bucket_endpoint_url=server.url,
        bucket_access_key_id=KEY_ID,
        bucket_secret_access_key=SECRET,
        bucket_name="alpha-results",
        **changes,
    )


def test_an_output_under_the_limit_carries_the_image_twice() -> None:
    data = png_bytes()
    output = success_output(result(data), Settings(), "job-1")
    encoded = base64.b64encode(data).decode()
    assert output == {
        "status": "success",
        "url": f"data:image/png;base64,{encoded}",
        "image_base64": encoded,
        "filename": FILENAME,
        "info": {"seed": 1},
    }
    assert output_size(output) == len(json.dumps({"output": output}, ensure_ascii=False).encode())


def test_the_size_is_what_runpod_sends_in_utf8() -> None:
    assert output_size({"a": "é"}) == len('{"output": {"a": "é"}}'.encode())


def test_base64_values_count_as_their_length_exactly() -> None:
    output = success_output(result(png_bytes(32)), Settings(), "job-1")
    exact = len(json.dumps({"output": output}, ensure_ascii=False).encode())
    assert output_size(output, base64_keys=("url", "image_base64")) == exact == output_size(output)


def test_over_the_limit_without_a_bucket_is_output_too_large() -> None:
    data = png_bytes(256)
    full = success_output(result(data), Settings(), "job-1")
    size = output_size(full)  # the slow exact way
    limit = size - 1
    with pytest.raises(OutputTooLarge) as caught:
        success_output(result(data), Settings(max_output_bytes=limit), "job-1")
    assert caught.value.code == "output_too_large"
    once = output_size(success_output(result(data), Settings(), "job-1", "base64"))
    assert caught.value.message == (
        f"the output is {size} bytes (a {len(data)}-byte PNG, sent twice as base64); "
        f"the limit is {limit} bytes (ALPHA_MAX_OUTPUT_BYTES); delivery 'base64' would fit ({once} bytes: the "
        "image once), or 'bucket' with a bucket configured"
    )
    assert success_output(result(data), Settings(max_output_bytes=size), "job-1") == full, "the limit is inclusive"
    with pytest.raises(OutputTooLarge) as caught:
        success_output(result(data), Settings(max_output_bytes=once - 1), "job-1", "base64")
    assert caught.value.message == (
        f"the output is {once} bytes (a {len(data)}-byte PNG, sent once as base64); "
        f"the limit is {once - 1} bytes (ALPHA_MAX_OUTPUT_BYTES); set BUCKET_ENDPOINT_URL "
        "and the other bucket settings to upload large images instead"
    )


def test_the_default_limit_fits_runpod_run() -> None:
    runpod_run_limit = 10_000_000
    assert Settings().max_output_bytes == 9_500_000 < runpod_run_limit


def test_an_empty_png_never_succeeds() -> None:
    with pytest.raises(Exception, match="the output image is empty"):
        success_output(result(b""), Settings(), "job-1")


def test_over_the_limit_with_a_bucket_uploads_and_returns_the_url(
    s3: tuple[FakeS3, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    fake, server = s3
    data = png_bytes(256)
    caplog.set_level(logging.DEBUG)
    output = success_output(result(data), bucket_settings(server, max_output_bytes=4096), "sync-123")
    assert set(output) == {"status", "url", "filename", "info"}, "no image_base64 once uploaded"
    assert output["status"] == "success" and output["filename"] == FILENAME
    key = f"alpha-results/sync-123/{FILENAME}"
    assert fake.objects == {key: data}, "the uploaded bytes are the PNG's"
    assert fake.content_types[key] == "image/png"
    url = output["url"]
    assert url.startswith(f"{server.url}/{key}?") and "X-Amz-Signature=" in url and f"Credential={KEY_ID}" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data, "the returned URL points at the uploaded object"
    assert output_size(output) <= 4096
    seen = json.dumps([[r.method, r.path, r.query, r.headers] for r in fake.requests])
    assert f"Credential={KEY_ID}/" in seen and SECRET not in seen
    assert SECRET not in caplog.text and "X-Amz-Signature" not in caplog.text
    assert f"uploaded sync-123/{FILENAME} to bucket alpha-results" in caplog.text


def test_a_large_png_goes_up_in_parts(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    data = os.urandom(12 * 2**20)  # the helper switches to a multipart upload above its threshold
    output = success_output(result(data), bucket_settings(server), "job-big")
    assert fake.objects[f"alpha-results/job-big/{FILENAME}"] == data
    assert sum(1 for r in fake.requests if "partNumber" in r.query) >= 2
    assert "image_base64" not in output


def test_the_job_id_is_a_safe_key_prefix(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    success_output(result(), bucket_settings(server, max_output_bytes=4096), "../odd id?")
    assert list(fake.objects) == [f"alpha-results/.._odd_id_/{FILENAME}"]


def test_a_refused_upload_is_upload_failed(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    fake.mode = "deny"
    with pytest.raises(UploadFailed) as caught:
        success_output(result(), bucket_settings(server, max_output_bytes=4096), "job-1")
    message = caught.value.message
    assert caught.value.code == "upload_failed" and message.startswith(
        f"the upload of job-1/{FILENAME} to bucket alpha-results at {server.url} failed: "
    )
    assert "AccessDenied" in message and SECRET not in message


def test_a_hung_upload_fails_at_its_deadline(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    fake.mode, fake.hang_s = "hang", 3.0
    with pytest.raises(UploadFailed, match=r"did not finish within 0\.5 s \(ALPHA_BUCKET_TIMEOUT_S\)"):
        success_output(result(), bucket_settings(server, max_output_bytes=4096, bucket_timeout_s=0.5), "job-1")


def test_without_boto3_the_upload_fails_clearly(
    s3: tuple[FakeS3, ServerThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else real(name, *a))
    with pytest.raises(UploadFailed, match="boto3, which the RunPod SDK's upload helper needs, is not installed"):
        success_output(result(), bucket_settings(s3[1], max_output_bytes=4096), "job-1")
    assert s3[0].requests == []


def test_an_output_too_large_even_when_uploaded(s3: tuple[FakeS3, ServerThread]) -> None:
    _, server = s3
    with pytest.raises(OutputTooLarge, match=r"bytes even with the image uploaded; the limit is 4096 bytes"):
        success_output(result(padding="x" * 5000), bucket_settings(server, max_output_bytes=4096), "job-1")


class StubGenerator:
    """Stands in for Generator in the RunPod handler: a fixed result, no ComfyUI."""

    def __init__(self, settings: Settings, png: bytes) -> None:
        self.settings = settings
        self.png = png

    def generate(self, *_args: Any, **_kwargs: Any) -> Result:
        return result(self.png)


def run(settings: Settings, data: bytes) -> dict[str, Any]:
    handler = make_handler(cast(Generator, StubGenerator(settings, data)))
    job_result: dict[str, Any] = asyncio.run(run_job(handler, {"id": "job-7", "input": {"prompt": "a cup"}}))
    return job_result


def test_the_runpod_handler_fails_the_job_when_too_large() -> None:
    data = png_bytes(128)
    job_result = run(Settings(max_output_bytes=4096), data)
    assert_error(job_result, "output_too_large", None, words="the output is ")
    assert job_result["error"].startswith("output_too_large: the output is ")
    assert "stopPod" not in job_result


def test_the_runpod_handler_returns_the_uploaded_url(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    data = png_bytes(128)
    job_result = run(bucket_settings(server, max_output_bytes=4096), data)
    assert set(job_result) == {"output"} and set(job_result["output"]) == {"status", "url", "filename", "info"}
    assert fake.objects == {f"alpha-results/job-7/{FILENAME}": data}


def test_the_sdk_debug_log_carries_no_base64(capsys: pytest.CaptureFixture[str]) -> None:
    """RunPod's run_job logs the handler's output at DEBUG (`Handler output: {job_output}`); the output's repr
    names the image by its length, so even RUNPOD_LOG_LEVEL=DEBUG logs no base64, and costs no copy."""
    from runpod.serverless.modules.rp_logger import RunPodLogger

    data = png_bytes(64)
    encoded = base64.b64encode(data).decode()
    output = success_output(result(data), Settings(), "job-1")
    assert json.loads(json.dumps(output))["image_base64"] == encoded, "JSON still carries the image"

    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        return output

    logger = RunPodLogger()
    previous = logger.level
    logger.set_level("DEBUG")
    try:
        done = asyncio.run(run_job(handler, {"id": "job-1", "input": {}}))
    finally:
        logger.set_level(previous)
    logged = capsys.readouterr()
    assert "Handler output" in logged.out + logged.err
    assert encoded[:40] not in logged.out + logged.err
    assert f"<{len(encoded)} characters>" in logged.out + logged.err
    assert done["output"]["image_base64"] == encoded


WEBP_NAME = "alpha_" + "cd" * 16 + ".webp"


def webp_result(size: int = 64) -> Result:
    image = Image.frombytes("RGBA", (size, size), os.urandom(4 * size * size))
    out = io.BytesIO()
    image.save(out, format="WEBP", lossless=True)
    return Result(image=out.getvalue(), filename=WEBP_NAME, info={"seed": 2}, mime_type="image/webp")


@pytest.mark.parametrize("made", [result, webp_result], ids=["png", "webp"])
def test_each_delivery_carries_the_image_as_it_says_and_counts_its_bytes(made: Callable[[], Result]) -> None:
    done = made()
    encoded = base64.b64encode(done.image).decode()
    inline = success_output(done, Settings(), "job-1")
    assert inline == success_output(done, Settings(), "job-1", "inline"), "inline is the default"
    assert inline["url"] == f"data:{done.mime_type};base64,{encoded}" and inline["image_base64"] == encoded
    once = success_output(done, Settings(), "job-1", "base64")
    assert once == {"status": "success", "image_base64": encoded, "filename": done.filename, "info": done.info}
    for output in (inline, once):
        exact = len(json.dumps({"output": output}, ensure_ascii=False).encode())
        assert output_size(output, base64_keys=("url", "image_base64")) == exact
    assert output_size(inline) - output_size(once) == len(inline["url"]) + len(', "url": ""'), "half the bytes"


def test_bucket_delivery_uploads_even_a_small_image_with_its_type(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    done = webp_result()
    output = success_output(done, bucket_settings(server), "job-w", "bucket")
    key = f"alpha-results/job-w/{WEBP_NAME}"
    assert set(output) == {"status", "url", "filename", "info"} and output["filename"] == WEBP_NAME
    assert fake.objects == {key: done.image} and fake.content_types[key] == "image/webp"
    with urllib.request.urlopen(output["url"], timeout=10) as response:
        assert response.read() == done.image and response.headers["Content-Type"] == "image/webp"


def test_bucket_delivery_needs_a_bucket(s3: tuple[FakeS3, ServerThread]) -> None:
    with pytest.raises(InputError) as caught:
        check_delivery("bucket", Settings())
    assert_error(error_body(caught.value), "invalid_input", "delivery", words="no bucket configured")
    for delivery in (None, "inline", "base64"):
        check_delivery(delivery, Settings())
    check_delivery("bucket", bucket_settings(s3[1]))


BLENDED_NAME = "alpha_" + "ab" * 16 + "_blended.png"


def layered(size: int = 64) -> Result:
    """A layer mode's result: the main image and the blended picture."""
    return Result(
        image=png_bytes(size),
        filename=FILENAME,
        info={"seed": 3, "mode": "foreground"},
        layers={"blended": Layer(png_bytes(size), BLENDED_NAME, "image/png")},
    )


def test_each_layer_comes_in_the_delivery_and_is_counted() -> None:
    done = layered()
    blended = base64.b64encode(done.layers["blended"].image).decode()
    inline = success_output(done, Settings(), "job-l")
    assert inline["layers"] == {
        "blended": {"url": f"data:image/png;base64,{blended}", "image_base64": blended, "filename": BLENDED_NAME}
    }
    once = success_output(done, Settings(), "job-l", "base64")
    assert once["layers"] == {"blended": {"image_base64": blended, "filename": BLENDED_NAME}}
    for output in (inline, once):
        exact = len(json.dumps({"output": output}, ensure_ascii=False).encode())
        assert output_size(output, base64_keys=("url", "image_base64")) == exact, "nested base64 counted"
    assert f"<{len(blended)} characters>" in repr(inline) and blended[:40] not in repr(inline), "no base64 in logs"


def test_the_size_guard_counts_the_layers_and_says_what_fits() -> None:
    done = layered(256)  # about 2 x 262 KB of noise: 4 x 350 KB inline, 2 x 350 KB as base64
    alone = success_output(Result(done.image, done.filename, done.info), Settings(), "job-l")
    limit = output_size(alone, base64_keys=("url", "image_base64")) + 1000
    with pytest.raises(OutputTooLarge) as caught:
        success_output(done, Settings().replace(max_output_bytes=limit), "job-l")
    message = caught.value.message
    assert f"and a {len(done.layers['blended'].image)}-byte blended" in message
    assert "delivery 'base64' would fit" in message and "each image once" in message


def test_bucket_delivery_uploads_every_layer(s3: tuple[FakeS3, ServerThread]) -> None:
    fake, server = s3
    done = layered()
    output = success_output(done, bucket_settings(server), "job-b", "bucket")
    assert set(output["layers"]["blended"]) == {"url", "filename"}
    assert fake.objects == {
        f"alpha-results/job-b/{FILENAME}": done.image,
        f"alpha-results/job-b/{BLENDED_NAME}": done.layers["blended"].image,
    }
    with urllib.request.urlopen(output["layers"]["blended"]["url"], timeout=10) as response:
        assert response.read() == done.layers["blended"].image
