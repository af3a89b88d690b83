"""Every setting, declared once: its field, variable, default, parser, documentation and unit (``SPECS``).

``handler.settings`` builds the one settings object from this table, and the ``--markdown`` table in DEPLOYMENT.md
and ``--get`` come from it too; it is apart only because it is long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler import setting_types as types
from handler.paths import REPO

CACHE = Path.home() / ".cache" / "layerdiffuse-alpha"


@dataclass(frozen=True)
class Spec:
    field: str
    env: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    unit: str = ""
    # A credential: never echoed in errors, hidden from repr and from ``--get``.
    secret: bool = False


# Needed, all of them, once BUCKET_ENDPOINT_URL turns uploads on.
BUCKET_FIELDS = ("bucket_access_key_id", "bucket_secret_access_key", "bucket_name")


# A table: one setting a row, kept as written (the formatter would spread each row over six lines).
# fmt: off
SPECS: tuple[Spec, ...] = (
    Spec("comfyui_dir", "ALPHA_COMFYUI_DIR", str(REPO / ".comfyui"), types.as_path,
         "ComfyUI folder laid out by `scripts/install_comfyui.py`."),
    Spec("comfyui_port", "ALPHA_COMFYUI_PORT", "8188", types.as_int_range(1, 65535),
         "Port of ComfyUI's HTTP and websocket API. ComfyUI always binds 127.0.0.1."),
    Spec("comfyui_args", "ALPHA_COMFYUI_ARGS", "", types.as_args,
         "Extra ComfyUI command-line arguments (shell syntax), e.g. `--highvram`."),
    Spec("comfyui_log_level", "ALPHA_COMFYUI_LOG_LEVEL", "INFO",
         types.as_choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "ComfyUI's own log level."),
    Spec("output_dir", "ALPHA_OUTPUT_DIR", "", types.as_optional_path,
         "ComfyUI's output folder; empty means `<ALPHA_COMFYUI_DIR>/output`. Job files are removed once read."),
    Spec("device", "ALPHA_DEVICE", "", types.as_choice("", "cuda", "cpu"),
         "`cuda` or `cpu`; empty means `cpu` with test models and `cuda` otherwise."),
    Spec("models_dir", "ALPHA_MODELS_DIR", "", types.as_optional_path,
         "Models folder searched first (checkpoints/, layer_model/); empty means ComfyUI's own `models/`. "
         "Ignored in test mode."),
    Spec("workflow", "ALPHA_WORKFLOW", "alpha_txt2img", types.as_workflow,
         "The production workflow: a name in `workflows/` (e.g. `alpha_txt2img_conv`) or a path to an API-format "
         "JSON file."),
    Spec("workflow_allowlist", "ALPHA_WORKFLOW_ALLOWLIST", "", types.as_workflows,
         "Workflows a request may pick with its `workflow` input (comma-separated names or paths); empty turns "
         "the `workflow` input off."),
    Spec("foreground_workflow", "ALPHA_FOREGROUND_WORKFLOW", "alpha_foreground", types.as_optional_workflow,
         "The workflow of `mode: foreground` (a transparent foreground for a given background); empty turns "
         "the mode off."),
    Spec("background_workflow", "ALPHA_BACKGROUND_WORKFLOW", "alpha_background", types.as_optional_workflow,
         "The workflow of `mode: background` (a background for a given transparent foreground); empty turns "
         "the mode off."),
    Spec("volume_dir", "ALPHA_VOLUME_DIR", "/runpod-volume", types.as_path,
         "Network volume; when `<volume>/models` exists, ComfyUI searches its `checkpoints/` and `layer_model/` "
         "first (LayerDiffuse loads from the first `layer_model` folder)."),
    Spec("gpu_preflight", "ALPHA_GPU_PREFLIGHT", "1", types.as_bool,
         "Check that CUDA works (a test computation) before starting ComfyUI; skipped when the device is `cpu`."),
    Spec("warmup", "ALPHA_WARMUP", "1", types.as_bool,
         "Run one warm-up job (the production workflow at `ALPHA_WARMUP_STEPS`) before taking jobs, so the "
         "first request does not pay for loading the models."),
    Spec("warmup_steps", "ALPHA_WARMUP_STEPS", "4", types.as_int_range(1, 150),
         "Sampler steps of the warm-up job (test mode uses `ALPHA_TEST_STEPS`).", "steps"),
    Spec("warmup_timeout_s", "ALPHA_WARMUP_TIMEOUT_S", "600", types.as_seconds,
         "Deadline for the warm-up job. It loads every model, which takes far longer than a warm job, so it has "
         "its own limit, apart from `ALPHA_JOB_TIMEOUT_S`.", "s"),
    Spec("job_timeout_s", "ALPHA_JOB_TIMEOUT_S", "300", types.as_seconds,
         "Deadline for one job: queueing, execution and fetching the result. Keep it below RunPod's execution timeout.",
         "s"),
    Spec("drain_timeout_s", "ALPHA_DRAIN_TIMEOUT_S", "20", types.as_seconds,
         "RunPod door: on SIGTERM (a scale-down, a new release) the worker takes no more jobs and lets the job in "
         "flight finish for up to this long; past it the job's prompt is interrupted and `cancelled` is posted for "
         "it, then the worker and ComfyUI exit. Keep it at least 5 s below the platform's grace period between "
         "SIGTERM and SIGKILL (DEPLOYMENT.md, \"Stop, cancel, SIGTERM\").", "s"),
    Spec("job_take_backoff_max_s", "ALPHA_JOB_TAKE_BACKOFF_MAX_S", "30", types.as_backoff_cap,
         "RunPod door: while RunPod's job API fails (connection refused, DNS, 5xx, timeouts), job-takes back off "
         "exponentially with jitter from about 0.5 s up to this cap; the first answered take resets it. One log "
         "line when the failures start, at most one summary a minute, one when they end.", "s"),
    Spec("allow_sdk_mismatch", "ALPHA_ALLOW_SDK_MISMATCH", "0", types.as_bool,
         "RunPod door: start the production job loop even when the installed RunPod SDK is not the release it "
         "adapts (`handler/doors/runpod/jobloop.py`). Off: the worker refuses to start (`cannot start:`) until "
         "someone has re-read the SDK's loop (DEPLOYMENT.md, \"The job loop\")."),
    Spec("ready_timeout_s", "ALPHA_READY_TIMEOUT_S", "180", types.as_seconds,
         "Deadline for ComfyUI to answer after it starts.", "s"),
    Spec("http_timeout_s", "ALPHA_HTTP_TIMEOUT_S", "30", types.as_seconds,
         "Deadline for one HTTP request to ComfyUI.", "s"),
    Spec("log_level", "ALPHA_LOG_LEVEL", "INFO", types.as_choice("DEBUG", "INFO", "WARNING", "ERROR"),
         "Log level of the handler. Prompt text is logged only at DEBUG."),
    Spec("runpod_log_level", "RUNPOD_LOG_LEVEL", "INFO", types.as_choice("NOTSET", "DEBUG", "INFO", "WARN", "ERROR"),
         "Log level of the RunPod SDK. Its DEBUG level logs every job's output (the image as its length, "
         "never its base64) and its polling; INFO is enough to operate."),
    Spec("max_uniform_alpha", "ALPHA_MAX_UNIFORM_ALPHA", "0.999", types.as_fraction,
         "Largest fraction of the output's pixels that may be fully opaque (alpha 255), and likewise fully "
         "transparent (alpha 0); above it the job fails with `transparency_failed`: LayerDiffuse that did not take "
         "effect gives an alpha that is (nearly) all one value. 0.999 still passes an object that covers only "
         "0.1% of the image (about 32x32 px of 1024x1024; a small cut-out on a wide transparent background is "
         "often 90-99% transparent) and refuses an alpha that is opaque but for a few pixels. 1 refuses only a "
         "constant alpha."),
    Spec("transparency_retries", "ALPHA_TRANSPARENCY_RETRIES", "1", types.as_int_range(0, 3),
         "When a job fails the transparency check and its request gave no seed, run it again with a new random "
         "seed, up to this many times, inside the same job deadline (`info.attempts` lists the seeds and why each "
         "was refused). A request with a seed is never retried: it asked for that exact image.", "retries"),
    Spec("max_output_bytes", "ALPHA_MAX_OUTPUT_BYTES", "9500000", types.as_int_range(4096, 20_000_000),
         "RunPod door: largest success output, measured as the JSON RunPod sends (`{\"output\": ...}`, UTF-8). "
         "The image travels in it twice (`url` and `image_base64`; `delivery: \"base64\"` sends it once); the "
         "default keeps it under the 10 MB payload limit of `/run` with room for RunPod's own fields (`/runsync` "
         "allows 20 MB). Above it the image is uploaded to the bucket when `BUCKET_ENDPOINT_URL` is set; otherwise "
         "the job fails with `output_too_large`.", "bytes"),
    Spec("bucket_endpoint_url", "BUCKET_ENDPOINT_URL", "", types.as_url,
         "RunPod door: S3-compatible endpoint for outputs over `ALPHA_MAX_OUTPUT_BYTES` and for `delivery: "
         "\"bucket\"` (the RunPod SDK's "
         "variable), e.g. `https://<account>.r2.cloudflarestorage.com`; empty means no uploads. When set, "
         "`BUCKET_ACCESS_KEY_ID`, `BUCKET_SECRET_ACCESS_KEY` and `ALPHA_BUCKET_NAME` are required."),
    Spec("bucket_access_key_id", "BUCKET_ACCESS_KEY_ID", "", types.as_token,
         "RunPod door: the bucket's access key id."),
    Spec("bucket_secret_access_key", "BUCKET_SECRET_ACCESS_KEY", "", types.as_token,
         "RunPod door: the bucket's secret access key. Never logged.", secret=True),
    Spec("bucket_name", "ALPHA_BUCKET_NAME", "", types.as_bucket,
         "RunPod door: the bucket that receives large outputs, as `<job id>/alpha_<32 hex>.png` (or `.webp`); the "
         "response's `url` is then a presigned GET URL, valid for 7 days (the SDK's fixed expiry)."),
    Spec("bucket_timeout_s", "ALPHA_BUCKET_TIMEOUT_S", "60", types.as_seconds,
         "RunPod door: deadline for one upload; past it the job fails with `upload_failed`.", "s"),
    Spec("serve_host", "ALPHA_SERVE_HOST", "127.0.0.1", types.as_host,
         "Local alpha API (`./bootstrap.sh serve`): address to bind. Anything but loopback exposes it; "
         "set `ALPHA_SERVE_TOKEN` then."),
    Spec("serve_port", "ALPHA_SERVE_PORT", "7861", types.as_int_range(1, 65535), "Local alpha API: port."),
    Spec("serve_allowed_hosts", "ALPHA_SERVE_ALLOWED_HOSTS", "", types.as_host_names,
         "Local alpha API: host names a request's `Host` header may carry besides `localhost`, `127.0.0.1`, `::1` "
         "and `ALPHA_SERVE_HOST` (comma-separated); any other name gets 403 `host_not_allowed`, which stops DNS "
         "rebinding. List the names you reach it by when you bind it to another address on purpose."),
    Spec("serve_token", "ALPHA_SERVE_TOKEN", "", types.as_serve_token,
         "Local alpha API: when set, every request needs `Authorization: Bearer <token>` (401 otherwise).",
         secret=True),
    Spec("serve_dir", "ALPHA_SERVE_DIR", "", types.as_optional_path,
         "Local alpha API: folder of the images it serves; empty means `<output folder>/alpha-api`."),
    Spec("serve_max_files", "ALPHA_SERVE_MAX_FILES", "200", types.as_int_range(1, 1_000_000),
         "Local alpha API: keep at most this many images (oldest pruned on each write).", "files"),
    Spec("serve_max_age_days", "ALPHA_SERVE_MAX_AGE_DAYS", "7", types.as_days,
         "Local alpha API: prune images older than this on each write.", "days"),
    Spec("serve_max_body_bytes", "ALPHA_SERVE_MAX_BODY_BYTES", str(10 * 2**20), types.as_int_range(1024, 16 * 2**20),
         "Local alpha API: largest request body accepted (413 above); an input image travels in it.", "bytes"),
    Spec("test_models", "ALPHA_TEST_MODELS", "0", types.as_bool,
         "Test mode: run on random-weight models (CPU by default), built at start when missing; they replace "
         "`ALPHA_MODELS_DIR` and the network volume's models. Never in production."),
    Spec("test_models_cache", "ALPHA_TEST_MODELS_CACHE", str(CACHE / "testmodels"), types.as_path,
         "Test mode: where generated test models are cached, keyed by a hash of the generator."),
    Spec("test_steps", "ALPHA_TEST_STEPS", "2", types.as_int_range(1, 150),
         "Test mode: sampler steps, applied after the request is validated.", "steps"),
    Spec("test_size", "ALPHA_TEST_SIZE", "256", types.as_int_range(64, 2048, 64),
         "Test mode: longest image side, applied after the request is validated.", "px"),
    Spec("fetch_timeout_s", "ALPHA_FETCH_TIMEOUT_S", "60", types.as_seconds,
         "Model fetcher (`python -m handler.models`): deadline for connecting and for each read of a download.",
         "s"),
    Spec("fetch_attempts", "ALPHA_FETCH_ATTEMPTS", "5", types.as_int_range(1, 20),
         "Model fetcher: attempts per source URL on connection errors, HTTP 5xx/429 and cut-off bodies "
         "(exponential backoff between them); each attempt resumes the partial file."),
    Spec("civitai_token", "CIVITAI_TOKEN", "", types.as_token,
         "Model fetcher: CivitAI API token, sent as `Authorization: Bearer` to manifest sources with "
         "`auth: civitai`. Optional for public models. Never logged.", secret=True),
    Spec("civitai_token_file", "CIVITAI_TOKEN_FILE", "", types.as_optional_path,
         "Model fetcher: file holding the CivitAI token (e.g. a BuildKit secret, `/run/secrets/civitai_token`); "
         "used when `CIVITAI_TOKEN` is empty; a missing file means no token."),
    Spec("hf_token", "HF_TOKEN", "", types.as_token,
         "Model fetcher: Hugging Face token, sent to manifest sources with `auth: huggingface`. Optional for "
         "public repositories. Never logged.", secret=True),
    Spec("hf_token_file", "HF_TOKEN_FILE", "", types.as_optional_path,
         "Model fetcher: file holding the Hugging Face token (e.g. `/run/secrets/hf_token`); used when "
         "`HF_TOKEN` is empty; a missing file means no token."),
)
# fmt: on
