"""The RunPod door's success output, in the request's ``delivery`` mode, measured against RunPod's payload limit
and kept under it.

``inline`` (the default) sends the image twice, as a data URI in ``url`` and as ``image_base64``; ``base64``
sends ``image_base64`` alone; ``bucket`` uploads it with the RunPod SDK's own helper and ``url`` is the object's
presigned URL, with no base64. RunPod sends the output as UTF-8 JSON (``{"output": ...}``) and caps it (10 MB
on ``/run``, 20 MB on ``/runsync``); an output over ``ALPHA_MAX_OUTPUT_BYTES`` would be lost there. Then, with
a bucket configured (``BUCKET_ENDPOINT_URL``), the image is uploaded instead; without one the job fails with
``output_too_large``, saying which delivery would fit. A success output always carries the image or its URL.

A layer mode's other images (the blended picture) go under ``layers``, each in the same delivery mode, and
count towards the limit.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from handler.errors import InputError, OutputError, OutputTooLarge, UploadFailed
from handler.logs import JobLog
from handler.results import Result
from handler.settings import Settings

log = logging.getLogger(__name__)
UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]")


REPR_MAX_CHARS = 200
KINDS = {"image/png": "PNG", "image/webp": "WebP"}


class Output(dict[str, Any]):
    """A success output. The RunPod SDK formats outputs into debug log lines with f-strings (run_job), which
    runs even when the line is not logged; this repr names a long string by its length instead of copying the
    image, so that costs nothing and a DEBUG log never carries base64."""

    def __repr__(self) -> str:
        return repr(_shortened(dict(self)))


def _shortened(value: Any) -> Any:
    """Long strings named by their length, at any depth of dicts (``layers``)."""
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    if isinstance(value, str) and len(value) > REPR_MAX_CHARS:
        return f"<{len(value)} characters>"
    return value


def _blanked(value: Any, base64_keys: tuple[str, ...]) -> tuple[Any, int]:
    """The value with its base64 strings (at any depth of dicts) emptied, and their total length."""
    if not isinstance(value, dict):
        return value, 0
    blank, length = {}, 0
    for key, item in value.items():
        if key in base64_keys and isinstance(item, str):
            blank[key], length = "", length + len(item)
        else:
            blank[key], inner = _blanked(item, base64_keys)
            length += inner
    return blank, length


def output_size(output: dict[str, Any], *, base64_keys: tuple[str, ...] = ()) -> int:
    """Bytes of the output as RunPod sends it: ``{"output": ...}`` as JSON (``ensure_ascii=False``), UTF-8.
    ``base64_keys`` name values that are base64 text (or a data URL of it), at any depth (``layers``), which JSON
    writes verbatim, so they count as their length: serialising the image twice over only to measure it cost
    3-13 ms a job at 1024x1024 (bench/output_cost.py)."""
    rest, length = _blanked(output, base64_keys)
    return len(json.dumps({"output": rest}, ensure_ascii=False).encode("utf-8")) + length


def check_delivery(delivery: str | None, settings: Settings) -> None:
    """Before the job runs: ``bucket`` needs a bucket to upload to."""
    if delivery == "bucket" and not settings.bucket_configured:
        raise InputError(
            "'delivery' is 'bucket' but this worker has no bucket configured (BUCKET_ENDPOINT_URL); "
            "use 'inline' or 'base64'",
            field="delivery",
        )


def _encoded(image: bytes, mime_type: str, delivery: str) -> dict[str, str]:
    """An image as base64: in ``image_base64``, and for ``inline`` also as a data URI in ``url``."""
    encoded = base64.b64encode(image).decode("ascii")
    url = {"url": f"data:{mime_type};base64,{encoded}"} if delivery == "inline" else {}
    return {**url, "image_base64": encoded}


def base64_output(result: Result, delivery: str) -> Output:
    """The image (and each layer) as base64, in the delivery's keys."""
    output = Output(status="success", **_encoded(result.image, result.mime_type, delivery))
    output.update(filename=result.filename, info=result.info)
    if result.layers:
        output["layers"] = {
            name: {**_encoded(layer.image, layer.mime_type, delivery), "filename": layer.filename}
            for name, layer in result.layers.items()
        }
    return output


def _measured(output: Output) -> int:
    return output_size(output, base64_keys=("url", "image_base64"))


def success_output(result: Result, settings: Settings, job_id: str, delivery: str | None = None) -> dict[str, Any]:
    """The success output of a job, under ALPHA_MAX_OUTPUT_BYTES; raises OutputTooLarge or UploadFailed."""
    if not result.image:
        raise OutputError("the output image is empty")
    delivery = delivery or "inline"
    if delivery == "bucket":
        return uploaded_output(result, settings, job_id)
    output = base64_output(result, delivery)
    size, limit = _measured(output), settings.max_output_bytes
    if size <= limit:
        return output
    kind = KINDS.get(result.mime_type, result.mime_type)
    layers = "".join(f" and a {len(layer.image)}-byte {name}" for name, layer in result.layers.items())
    too_large = (
        f"the output is {size} bytes (a {len(result.image)}-byte {kind}{layers}, sent "
        f"{'twice' if delivery == 'inline' else 'once'} as base64); the limit is {limit} bytes "
        "(ALPHA_MAX_OUTPUT_BYTES)"
    )
    if not settings.bucket_configured:
        raise OutputTooLarge(f"{too_large}; {_what_fits(result, delivery, limit)}")
    JobLog(log, job_id).info("%s: uploading the image to the bucket", too_large)
    return uploaded_output(result, settings, job_id)


def _what_fits(result: Result, delivery: str, limit: int) -> str:
    """The advice in an output_too_large error: the delivery that would fit, or a bucket."""
    if delivery == "inline" and (size := _measured(base64_output(result, "base64"))) <= limit:
        each = "each image" if result.layers else "the image"
        return f"delivery 'base64' would fit ({size} bytes: {each} once), or 'bucket' with a bucket configured"
    return "set BUCKET_ENDPOINT_URL and the other bucket settings to upload large images instead"


def uploaded_output(result: Result, settings: Settings, job_id: str) -> Output:
    """The image (and each layer) uploaded to the bucket; ``url`` is its presigned URL."""
    output = Output(
        status="success",
        url=upload(result.image, result.filename, job_id, settings, content_type=result.mime_type),
        filename=result.filename,
        info=result.info,
    )
    if result.layers:
        output["layers"] = {
            name: {
                "url": upload(layer.image, layer.filename, job_id, settings, content_type=layer.mime_type),
                "filename": layer.filename,
            }
            for name, layer in result.layers.items()
        }
    size, limit = output_size(output), settings.max_output_bytes
    if size > limit:
        raise OutputTooLarge(
            f"the output is {size} bytes even with the image uploaded; the limit is {limit} bytes "
            "(ALPHA_MAX_OUTPUT_BYTES)"
        )
    return output


def key_prefix(job_id: str) -> str:
    """The job id as the object's folder, with anything but letters, digits, '.', '_' and '-' replaced."""
    return UNSAFE_KEY_CHARS.sub("_", job_id) or "-"


def upload(data: bytes, filename: str, job_id: str, settings: Settings, *, content_type: str = "image/png") -> str:
    """Upload the image as ``<job id>/<filename>`` with the RunPod SDK's helper, within ALPHA_BUCKET_TIMEOUT_S;
    returns the object's presigned URL. Credentials go to the helper as arguments, never through the
    environment; the secret key and the signed URL are not logged."""
    jlog = JobLog(log, job_id)
    prefix = key_prefix(job_id)
    key = f"{prefix}/{filename}"
    where = f"{key} to bucket {settings.bucket_name} at {settings.bucket_endpoint_url}"
    if importlib.util.find_spec("boto3") is None:
        raise UploadFailed("cannot upload: boto3, which the RunPod SDK's upload helper needs, is not installed")
    # Imported here: it configures logging on import, which must not happen before logs.configure.
    from runpod.serverless.utils import rp_upload

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="alpha-upload-") as folder:
                path = Path(folder) / filename
                path.write_bytes(data)
                outcome["url"] = rp_upload.upload_file_to_bucket(
                    file_name=filename,
                    file_location=str(path),
                    bucket_name=settings.bucket_name,
                    prefix=prefix,
                    extra_args={"ContentType": content_type},
                    bucket_creds={
                        "endpointUrl": settings.bucket_endpoint_url,
                        "accessId": settings.bucket_access_key_id,
                        "accessSecret": settings.bucket_secret_access_key,
                    },
                )
        except Exception as exc:  # handed to the waiting job thread
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"upload-{job_id}", daemon=True)
    thread.start()
    thread.join(settings.bucket_timeout_s)
    if thread.is_alive():
        raise UploadFailed(
            f"the upload of {where} did not finish within {settings.bucket_timeout_s:g} s (ALPHA_BUCKET_TIMEOUT_S)"
        )
    if "error" in outcome:
        exc = outcome["error"]
        raise UploadFailed(f"the upload of {where} failed: {type(exc).__name__}: {exc}")
    url = outcome.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        # The helper saves to a local folder instead when it has no client; that is no use to the caller.
        raise UploadFailed(f"the upload of {where} gave no URL")
    jlog.info("uploaded %s (%d bytes) in %d ms", where, len(data), (time.monotonic() - started) * 1000)
    return url
