"""The RunPod Hub listing (.runpod/hub.json, .runpod/tests.json) and test_input.json.

hub.json's ``env`` list is generated here from the settings specification (``handler.settings.SPECS``: the
variable, its doc, its default, its options) for the settings an endpoint owner would set, and the test
fails when the file drifts from it, as DEPLOYMENT.md's settings table does. Regenerate it with
``python -m tests.unit.test_hub --write``.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

from handler import setting_types
from handler.paths import REPO
from handler.request import Request
from handler.settings import SPECS, Spec

HUB = REPO / ".runpod" / "hub.json"
TESTS = REPO / ".runpod" / "tests.json"
# The settings an endpoint owner would set, with the name the Hub shows; the rest (paths laid out by the
# image, the alpha API, test mode, the model fetcher) belong to the image or to development.
LISTED: dict[str, str] = {
    "workflow": "Production workflow",
    "workflow_allowlist": "Workflows a request may pick",
    "job_timeout_s": "Job timeout (s)",
    "warmup": "Warm-up job at start",
    "warmup_timeout_s": "Warm-up timeout (s)",
    "ready_timeout_s": "ComfyUI start timeout (s)",
    "max_uniform_alpha": "Largest uniform alpha share",
    "transparency_retries": "New seeds on a flat alpha",
    "max_output_bytes": "Largest output (bytes)",
    "bucket_endpoint_url": "Bucket endpoint URL",
    "bucket_access_key_id": "Bucket access key id",
    "bucket_secret_access_key": "Bucket secret access key",
    "bucket_name": "Bucket name",
    "bucket_timeout_s": "Bucket upload timeout (s)",
    "volume_dir": "Network volume folder",
    "comfyui_args": "Extra ComfyUI arguments",
    "log_level": "Handler log level",
    "runpod_log_level": "RunPod SDK log level",
}
# Shown without opening "advanced".
BASIC = {"workflow", "job_timeout_s", "bucket_endpoint_url"}


def options(spec: Spec) -> tuple[str, ...] | None:
    """The values a choice setting takes (``setting_types.as_choice``), or None."""
    if getattr(spec.parse, "__qualname__", "").startswith(setting_types.as_choice.__qualname__):
        found: tuple[str, ...] = inspect.getclosurevars(spec.parse).nonlocals["options"]
        return found
    return None


def hub_input(spec: Spec) -> dict[str, Any]:
    value = spec.parse(spec.default)
    kind = "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "string"
    entry: dict[str, Any] = {
        "name": LISTED[spec.field],
        "type": kind,
        "description": spec.doc.replace("`", "") + (f" Unit: {spec.unit}." if spec.unit else ""),
        "default": value if kind != "string" else spec.default,
        "advanced": spec.field not in BASIC,
    }
    if choices := options(spec):
        entry["options"] = [{"label": choice or "(empty)", "value": choice} for choice in choices]
    return entry


def hub_env() -> list[dict[str, Any]]:
    return [{"key": spec.env, "input": hub_input(spec)} for spec in SPECS if spec.field in LISTED]


def test_every_listed_setting_exists() -> None:
    assert set(LISTED) <= {spec.field for spec in SPECS} and set(LISTED) >= BASIC


def test_hub_env_is_generated_from_the_settings() -> None:
    hub = json.loads(HUB.read_text())
    assert hub["config"]["env"] == hub_env(), "hub.json drifted: python -m tests.unit.test_hub --write"


def test_options_and_defaults_come_from_the_parsers() -> None:
    env = {entry["key"]: entry["input"] for entry in hub_env()}
    assert [o["value"] for o in env["ALPHA_LOG_LEVEL"]["options"]] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert env["ALPHA_JOB_TIMEOUT_S"]["default"] == 300 and env["ALPHA_JOB_TIMEOUT_S"]["type"] == "number"
    assert env["ALPHA_WARMUP"] == env["ALPHA_WARMUP"] | {"type": "boolean", "default": True}
    assert env["ALPHA_WORKFLOW"]["default"] == "alpha_txt2img" and "options" not in env["ALPHA_WORKFLOW"]


def test_hub_listing_fields() -> None:
    hub = json.loads(HUB.read_text())
    assert (hub["type"], hub["category"]) == ("serverless", "image") and hub["title"] and hub["description"]
    config = hub["config"]
    assert config["runsOn"] == "GPU" and config["gpuCount"] == 1
    # DEPLOYMENT.md: 24 GB tiers first, 16 GB as a fallback; a driver for CUDA 13.0 (the base image's).
    assert config["gpuIds"].split(",") == ["ADA_24", "AMPERE_24", "AMPERE_16"]
    assert config["allowedCudaVersions"] == ["13.0"]
    assert "nvidia/cuda:13.0." in (REPO / "Dockerfile").read_text()
    assert config["containerDiskInGb"] == 30 and "| Container disk | 30 GB |" in (REPO / "DEPLOYMENT.md").read_text()


def test_hub_smoke_test_sends_a_valid_input_with_a_cold_start_timeout() -> None:
    tests = json.loads(TESTS.read_text())
    [smoke] = tests["tests"]
    Request.parse(smoke["input"])  # the input contract accepts it
    example = json.loads((REPO / "test_input.json").read_text())["input"]
    assert smoke["input"] == example | {"width": 1024, "height": 1024}
    assert smoke["timeout"] >= 600_000, "milliseconds: an image pull, ComfyUI's start and the warm-up come first"
    assert tests["config"]["gpuCount"] == 1 and tests["config"]["allowedCudaVersions"] == ["13.0"]


def test_test_input_is_the_readme_example() -> None:
    job = json.loads((REPO / "test_input.json").read_text())
    assert set(job) == {"input"} and Request.parse(job["input"]).prompt == "a glass apple"


def test_the_hub_handler_file_runs_the_worker() -> None:
    text = (REPO / ".runpod" / "handler.py").read_text()
    assert "from handler.doors.runpod.worker import main" in text
    compile(text, ".runpod/handler.py", "exec")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        hub = json.loads(HUB.read_text())
        hub["config"]["env"] = hub_env()
        HUB.write_text(json.dumps(hub, indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(hub_env(), indent=2) + "\n")
