"""The one settings object, built once from the environment.

Every setting is declared once in ``SPECS`` with its variable, default, unit and
doc; parsing, validation, the ``--markdown`` table in DEPLOYMENT.md and
``--get`` for shell scripts all come from that list. No other module reads
``os.environ``: tests build ``Settings`` directly or from a dict.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler import setting_types as types
from handler import testmodels
from handler.paths import REPO

__all__ = ["CACHE", "SPECS", "Settings", "SettingsError", "Spec", "load_or_exit", "markdown_table"]

CACHE = Path.home() / ".cache" / "layerdiffuse-alpha"


class SettingsError(ValueError):
    """A variable holds a value we cannot use; the message names it."""


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
         "Models folder searched first (checkpoints/, layer_model/); empty means ComfyUI's own `models/`."),
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
         "Test mode: run on generated random-weight models (CPU by default). Never in production."),
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


_D: dict[str, Any] = {spec.field: spec.parse(spec.default) for spec in SPECS}


@dataclass(frozen=True)
class Settings:
    comfyui_dir: Path = _D["comfyui_dir"]
    comfyui_port: int = _D["comfyui_port"]
    comfyui_args: tuple[str, ...] = _D["comfyui_args"]
    comfyui_log_level: str = _D["comfyui_log_level"]
    output_dir: Path | None = _D["output_dir"]
    device: str = _D["device"]
    models_dir: Path | None = _D["models_dir"]
    workflow: Path = _D["workflow"]
    workflow_allowlist: tuple[Path, ...] = _D["workflow_allowlist"]
    foreground_workflow: Path | None = _D["foreground_workflow"]
    background_workflow: Path | None = _D["background_workflow"]
    volume_dir: Path = _D["volume_dir"]
    gpu_preflight: bool = _D["gpu_preflight"]
    warmup: bool = _D["warmup"]
    warmup_steps: int = _D["warmup_steps"]
    warmup_timeout_s: float = _D["warmup_timeout_s"]
    job_timeout_s: float = _D["job_timeout_s"]
    drain_timeout_s: float = _D["drain_timeout_s"]
    ready_timeout_s: float = _D["ready_timeout_s"]
    http_timeout_s: float = _D["http_timeout_s"]
    log_level: str = _D["log_level"]
    runpod_log_level: str = _D["runpod_log_level"]
    max_uniform_alpha: float = _D["max_uniform_alpha"]
    transparency_retries: int = _D["transparency_retries"]
    max_output_bytes: int = _D["max_output_bytes"]
    bucket_endpoint_url: str = _D["bucket_endpoint_url"]
    bucket_access_key_id: str = _D["bucket_access_key_id"]
    bucket_secret_access_key: str = dataclasses.field(default=_D["bucket_secret_access_key"], repr=False)
    bucket_name: str = _D["bucket_name"]
    bucket_timeout_s: float = _D["bucket_timeout_s"]
    serve_host: str = _D["serve_host"]
    serve_port: int = _D["serve_port"]
    serve_allowed_hosts: tuple[str, ...] = _D["serve_allowed_hosts"]
    serve_token: str | None = dataclasses.field(default=_D["serve_token"], repr=False)
    serve_dir: Path | None = _D["serve_dir"]
    serve_max_files: int = _D["serve_max_files"]
    serve_max_age_days: float = _D["serve_max_age_days"]
    serve_max_body_bytes: int = _D["serve_max_body_bytes"]
    test_models: bool = _D["test_models"]
    test_models_cache: Path = _D["test_models_cache"]
    test_steps: int = _D["test_steps"]
    test_size: int = _D["test_size"]
    fetch_timeout_s: float = _D["fetch_timeout_s"]
    fetch_attempts: int = _D["fetch_attempts"]
    civitai_token: str = dataclasses.field(default=_D["civitai_token"], repr=False)
    civitai_token_file: Path | None = _D["civitai_token_file"]
    hf_token: str = dataclasses.field(default=_D["hf_token"], repr=False)
    hf_token_file: Path | None = _D["hf_token_file"]

    def __post_init__(self) -> None:
        if self.bucket_endpoint_url:
            missing = [spec.env for spec in SPECS if spec.field in BUCKET_FIELDS and not getattr(self, spec.field)]
            if missing:
                raise SettingsError(f"BUCKET_ENDPOINT_URL is set, so {' and '.join(missing)} must be set too")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SPECS:
            raw = env.get(spec.env, spec.default)
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if spec.secret else repr(raw)
                raise SettingsError(f"{spec.env}={shown}: {exc}") from None
        return cls(**values)

    @property
    def bucket_configured(self) -> bool:
        """Whether outputs over ALPHA_MAX_OUTPUT_BYTES are uploaded (the other bucket settings are then set)."""
        return bool(self.bucket_endpoint_url)

    @property
    def comfyui_url(self) -> str:
        return f"http://127.0.0.1:{self.comfyui_port}"

    @property
    def effective_device(self) -> str:
        return self.device or ("cpu" if self.test_models else "cuda")

    @property
    def effective_output_dir(self) -> Path:
        return self.output_dir or self.comfyui_dir / "output"

    @property
    def input_dir(self) -> Path:
        """ComfyUI's input folder (``--input-directory``), where a job's uploaded image lands: ours alone, beside
        the outputs, so that a sweep finds every file a job left."""
        return self.effective_output_dir / "alpha-input"

    @property
    def layer_workflows(self) -> dict[str, Path]:
        """Layer mode -> its workflow, for the modes that are on."""
        paths = {"foreground": self.foreground_workflow, "background": self.background_workflow}
        return {mode: path for mode, path in paths.items() if path is not None}

    @property
    def effective_serve_dir(self) -> Path:
        return self.serve_dir or self.effective_output_dir / "alpha-api"

    @property
    def serve_is_loopback(self) -> bool:
        return self.serve_host == "localhost" or ipaddress.ip_address(self.serve_host).is_loopback

    @property
    def effective_models_dir(self) -> Path | None:
        """The folder ComfyUI searches first for models, or None for its own."""
        if self.models_dir is not None or not self.test_models:
            return self.models_dir
        return testmodels.models_dir(self.test_models_cache)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in a child process (from_env's inverse)."""
        env = {}
        for spec in SPECS:
            value = getattr(self, spec.field)
            if isinstance(value, bool):
                env[spec.env] = "1" if value else "0"
            elif isinstance(value, tuple) and all(isinstance(v, Path) for v in value):
                env[spec.env] = ",".join(str(v) for v in value)
            elif isinstance(value, tuple):
                env[spec.env] = shlex.join(value)
            else:
                env[spec.env] = "" if value is None else str(value)
        return env


def load_or_exit() -> Settings:
    """For entry points: the settings, or exit status 2 with the bad variable named."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"invalid setting: {exc}\n")
        raise SystemExit(2) from None


def markdown_table() -> str:
    lines = ["| Variable | Default | Unit | Meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        default = spec.default.replace(str(REPO), "<repo>").replace(str(Path.home()), "~")
        lines.append(f"| `{spec.env}` | `{default}` | {spec.unit} | {spec.doc} |".replace("``", "(empty)"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Show or check the settings.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print the settings table for DEPLOYMENT.md")
    group.add_argument("--check", action="store_true", help="parse the environment; exit 1 naming a bad variable")
    group.add_argument("--get", metavar="FIELD", help="print one resolved setting (for shell scripts)")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    settings = load_or_exit()
    if args.get:
        if any(spec.secret and spec.field == args.get for spec in SPECS):
            sys.stderr.write(f"{args.get} is a secret; it is not printed\n")
            return 1
        value = getattr(settings, args.get, None)
        if value is None and not hasattr(settings, args.get):
            sys.stderr.write(f"unknown setting {args.get}\n")
            return 1
        sys.stdout.write(f"{value if value is not None else ''}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
