"""Job input: one schema for every door (RunPod job ``input``, the local alpha API body)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handler.errors import InputError

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**53 - 1  # the largest integer every JSON client represents exactly
FIELDS = ("prompt", "negative_prompt", "seed", "width", "height", "workflow")
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _text(data: Mapping[str, Any], field: str, *, required: bool) -> str | None:
    if field not in data:
        if required:
            raise InputError(f"'{field}' is required", field=field)
        return None
    value = data[field]
    if not isinstance(value, str):
        hint = "; omit the field to use the default" if not required and value is None else ""
        raise InputError(f"'{field}' must be a string, got {_kind(value)}{hint}", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"'{field}' is not valid Unicode text (lone surrogate)", field=field) from None
    if "\x00" in value:
        raise InputError(f"'{field}' must not contain NUL characters", field=field)
    # Measured before stripping, as the published schema's maxLength is.
    if len(value) > MAX_PROMPT_CHARS:
        raise InputError(f"'{field}' is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}", field=field)
    value = value.strip()
    if required and not value:
        raise InputError(f"'{field}' must not be empty", field=field)
    if required and not _visible(value):
        raise InputError(f"'{field}' has no visible characters (only invisible formatting ones)", field=field)
    return value


def _visible(text: str) -> bool:
    """Anything besides whitespace and invisible format characters (zero-width space, joiners, marks)?"""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def _integer(data: Mapping[str, Any], field: str, low: int, high: int) -> int | None:
    if field not in data:
        return None
    value = data[field]
    # bool is a subclass of int: refuse it explicitly, and floats even when integral.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"'{field}' must be an integer, got {_kind(value)}", field=field)
    if not low <= value <= high:
        raise InputError(f"'{field}' must be from {low} to {high}, got {value}", field=field)
    return value


def size_list(sizes: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"{w}x{h}" for w, h in sizes)


def check_size(width: int, height: int, sizes: Sequence[tuple[int, int]]) -> None:
    """The workflow declares its sizes (``alpha_sizes``); anything else is the client's error."""
    if (width, height) not in sizes:
        raise InputError(
            f"size {width}x{height} ('width' x 'height') is not allowed; allowed sizes: {size_list(sizes)}",
            field="width",
        )


@dataclass(frozen=True)
class Request:
    prompt: str
    negative_prompt: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    workflow: str | None = None

    @classmethod
    def parse(cls, data: Any) -> Request:
        """Validate raw job input; raises InputError naming the first bad field."""
        if not isinstance(data, Mapping):
            raise InputError(f"input must be a JSON object, got {_kind(data)}")
        unknown = sorted(str(k) for k in data if k not in FIELDS)
        if unknown:
            raise InputError(f"unknown field '{unknown[0]}'; allowed fields: {', '.join(FIELDS)}", field=unknown[0])
        prompt = _text(data, "prompt", required=True)
        assert prompt is not None
        negative = _text(data, "negative_prompt", required=False)
        seed = _integer(data, "seed", 0, MAX_SEED)
        width = _integer(data, "width", 64, 8192)
        height = _integer(data, "height", 64, 8192)
        if (width is None) != (height is None):
            missing = "height" if height is None else "width"
            raise InputError(f"'width' and 'height' must be given together; '{missing}' is missing", field=missing)
        workflow = data.get("workflow")
        if "workflow" in data and not (isinstance(workflow, str) and WORKFLOW_NAME.fullmatch(workflow)):
            raise InputError(
                "'workflow' must be a workflow name (letters, digits, '_', '-', '.'), got "
                f"{_kind(workflow) if not isinstance(workflow, str) else repr(workflow[:80])}",
                field="workflow",
            )
        return cls(prompt=prompt, negative_prompt=negative, seed=seed, width=width, height=height, workflow=workflow)


def input_schema(sizes: Sequence[tuple[int, int]], workflows: Sequence[str] = ()) -> dict[str, Any]:
    """JSON Schema of the job input, for the OpenAPI document. Rules a schema cannot say (a non-blank
    prompt, no NUL, an allowed width x height pair) are in the descriptions and answered with 400."""
    text = {"type": "string", "maxLength": MAX_PROMPT_CHARS}
    properties: dict[str, Any] = {
        "prompt": {**text, "minLength": 1, "description": "What to draw; must not be blank."},
        "negative_prompt": {**text, "description": "What to avoid; omitted means the workflow's default."},
        "seed": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SEED,
            "description": "Sampler seed; omitted means a random seed, reported in `info.seed`.",
        },
        "width": {
            "type": "integer",
            "enum": sorted({w for w, _ in sizes}),
            "description": f"Given together with `height`, as one of: {size_list(sizes)}.",
        },
        "height": {
            "type": "integer",
            "enum": sorted({h for _, h in sizes}),
            "description": "Given together with `width`.",
        },
    }
    if workflows:
        properties["workflow"] = {
            "type": "string",
            "enum": list(workflows),
            "description": "A named workflow; omitted means the production one.",
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["prompt"],
        "properties": properties,
        "dependentRequired": {"width": ["height"], "height": ["width"]},
    }
