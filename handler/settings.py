"""The one settings object, built once from the environment.

Every setting is declared once in ``SPECS`` (``handler.setting_specs``) with its variable, default, unit and
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler import testmodels
from handler.paths import REPO
from handler.setting_specs import BUCKET_FIELDS, CACHE, SPECS, Spec

__all__ = ["CACHE", "SPECS", "Settings", "SettingsError", "Spec", "load_or_exit", "markdown_table"]


class SettingsError(ValueError):
    """A variable holds a value we cannot use; the message names it."""


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
    job_take_backoff_max_s: float = _D["job_take_backoff_max_s"]
    allow_sdk_mismatch: bool = _D["allow_sdk_mismatch"]
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
        """The folder ComfyUI searches first for models, or None for its own. Test mode always uses the test
        models, whatever ALPHA_MODELS_DIR says (the image sets it): never a mix of test and real weights."""
        if self.test_models:
            return testmodels.models_dir(self.test_models_cache)
        return self.models_dir

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
