"""Parsers of setting values: each takes a variable's raw text and returns the value, or raises ValueError
saying what it expects (``Settings.from_env`` adds the variable's name)."""

from __future__ import annotations

import ipaddress
import re
import shlex
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from handler.paths import WORKFLOWS

HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def as_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def as_int_range(low: int, high: int, multiple: int = 1) -> Callable[[str], int]:
    extra = f", a multiple of {multiple}" if multiple > 1 else ""
    message = f"expected an integer from {low} to {high}{extra}"

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(message) from None
        if not low <= value <= high or value % multiple:
            raise ValueError(message)
        return value

    return parse


def float_range(low: float, high: float, message: str) -> Callable[[str], float]:
    """A parser of numbers in (low, high]; ``message`` says what it expects."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(message) from None
        if not low < value <= high:  # also refuses nan
            raise ValueError(message)
        return value

    return parse


as_seconds = float_range(0, 86400, "expected seconds, more than 0 and at most 86400")
as_backoff_cap = float_range(0.5, 30, "expected seconds, more than 0.5 and at most 30")
as_days = float_range(0, 3650, "expected days, more than 0 and at most 3650")
as_fraction = float_range(0.5, 1, "expected a fraction more than 0.5 and at most 1")


def as_choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def as_path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("expected a path")
    return Path(raw.strip()).expanduser().resolve()


def as_optional_path(raw: str) -> Path | None:
    return as_path(raw) if raw.strip() else None


def as_workflow(raw: str) -> Path:
    """A bare name means ``workflows/<name>.json``; anything with a slash or a .json suffix is a path."""
    value = raw.strip()
    if not value:
        raise ValueError("expected a workflow name or path")
    if "/" not in value and not value.endswith(".json"):
        return WORKFLOWS / f"{value}.json"
    return as_path(value)


def as_optional_workflow(raw: str) -> Path | None:
    """A workflow name or path, or empty for none (the feature is off)."""
    return as_workflow(raw) if raw.strip() else None


def as_workflows(raw: str) -> tuple[Path, ...]:
    return tuple(as_workflow(part) for part in raw.split(",") if part.strip())


def as_args(raw: str) -> tuple[str, ...]:
    return tuple(shlex.split(raw))


def as_host(raw: str) -> str:
    value = raw.strip()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if value != "localhost":
            raise ValueError("expected an IP address such as 127.0.0.1 or 0.0.0.0, or localhost") from None
    return value


def as_host_names(raw: str) -> tuple[str, ...]:
    """Comma-separated host names or IP addresses, as a ``Host`` header names them (no port)."""
    names = tuple(part.strip().lower().strip("[]") for part in raw.split(",") if part.strip())
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if not HOST_NAME.fullmatch(name):
                raise ValueError(f"expected host names such as api.example.internal, got {name!r}") from None
    return names


def as_serve_token(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if len(value) < 16 or not value.isprintable() or " " in value:
        raise ValueError("expected at least 16 printable characters without spaces (or empty for no token)")
    return value


def as_token(raw: str) -> str:
    value = raw.strip()
    if not all(33 <= ord(char) <= 126 for char in value):
        raise ValueError("expected a token of printable ASCII characters without spaces")
    return value


def as_url(raw: str) -> str:
    """An http(s) URL with a host, or empty."""
    value = raw.strip()
    if not value:
        return ""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("expected an http:// or https:// URL with a host (or empty)")
    return value.rstrip("/")


def as_bucket(raw: str) -> str:
    value = raw.strip()
    if value and not BUCKET_NAME.fullmatch(value):
        raise ValueError("expected an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-' (or empty)")
    return value
