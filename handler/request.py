"""Job input: one contract for every door (RunPod job ``input``, the local alpha API body).

``CONTRACT`` declares each field once, in the order it is checked. Each field both validates its value
(``Request.parse``) and states itself in JSON Schema (``input_schema``); the object-level rules (the allowed
keys, ``required``, ``dependentRequired``) are derived from the same declaration. Rules a schema cannot state
(a non-blank prompt, no NUL, an allowed width x height pair) are in the descriptions and answered with 400.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handler import prompt_syntax
from handler.errors import InputError

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**53 - 1  # the largest integer every JSON client represents exactly
MIN_SIDE, MAX_SIDE = 64, 8192  # a sanity range; the workflow's sizes decide (check_size)
MAX_TRIM_MARGIN = 512
FORMATS = ("png", "webp")
DELIVERIES = ("inline", "base64", "bucket")
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Sizes = Sequence[tuple[int, int]]
Fragment = dict[str, Any]


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


def _visible(text: str) -> bool:
    """Anything besides whitespace and invisible format characters (zero-width space, joiners, marks)?"""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def size_list(sizes: Sizes) -> str:
    return ", ".join(f"{w}x{h}" for w, h in sizes)


def check_size(width: int, height: int, sizes: Sizes) -> None:
    """The workflow declares its sizes (``alpha_sizes``); anything else is the client's error."""
    if (width, height) not in sizes:
        raise InputError(
            f"size {width}x{height} ('width' x 'height') is not allowed; allowed sizes: {size_list(sizes)}",
            field="width",
        )


@dataclass(frozen=True, kw_only=True)
class Field:
    """One input field: how its value is checked (``check``) and how JSON Schema states it (``schema``).
    ``together`` names a field that must be given with this one (``dependentRequired``)."""

    name: str
    description: str
    required: bool = False
    together: str | None = None
    # The field may be given only when this boolean field is true (``dependentSchemas``).
    only_with: str | None = None
    default: Any = None

    def parse(self, data: Mapping[str, Any]) -> Any:
        """The field's value from the input: ``default`` when it is absent and optional."""
        if self.name in data:
            return self.check(data[self.name])
        if self.required:
            raise self.refuse("is required")
        return self.default

    def documented(self, fragment: Fragment) -> Fragment:
        """The fragment with the default (where the parse has one) and the description, in that order."""
        default = {} if self.default is None else {"default": self.default}
        return {**fragment, **default, "description": self.description}

    def refuse(self, words: str) -> InputError:
        return InputError(f"'{self.name}' {words}", field=self.name)

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment | None:
        """The field's JSON Schema, or None where the field is not offered (a workflow without an allowlist)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Text(Field):
    """A string of at most ``max_length`` code points, measured before trimming; returned trimmed. A required
    text must also be non-blank and have a visible character."""

    max_length: int = MAX_PROMPT_CHARS

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            hint = "; omit the field to use the default" if not self.required and value is None else ""
            raise self.refuse(f"must be a string, got {_kind(value)}{hint}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.refuse("is not valid Unicode text (lone surrogate)") from None
        if "\x00" in value:
            raise self.refuse("must not contain NUL characters")
        # Measured before stripping, as the published schema's maxLength is.
        if len(value) > self.max_length:
            raise self.refuse(f"is {len(value)} characters long; the limit is {self.max_length}")
        text = value.strip()
        if self.required and not text:
            raise self.refuse("must not be empty")
        if self.required and not _visible(text):
            raise self.refuse("has no visible characters (only invisible formatting ones)")
        prompt_syntax.check(text, self.name)
        return text

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        fragment: Fragment = {"type": "string", "maxLength": self.max_length}
        if self.required:
            fragment["minLength"] = 1
        return {**fragment, "description": self.description}


@dataclass(frozen=True, kw_only=True)
class Integer(Field):
    """An integer from ``low`` to ``high``; booleans and floats (integral ones too) are refused."""

    low: int
    high: int

    def check(self, value: Any) -> int:
        # bool is a subclass of int: refuse it explicitly, and floats even when integral.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(f"must be an integer, got {_kind(value)}")
        if not self.low <= value <= self.high:
            raise self.refuse(f"must be from {self.low} to {self.high}, got {value}")
        return value

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        return self.documented({"type": "integer", "minimum": self.low, "maximum": self.high})


@dataclass(frozen=True, kw_only=True)
class Side(Integer):
    """One side of the image (``axis`` 0: width, 1: height). The parse is a plain range check; the schema lists
    the values the workflow's sizes use, and the pair itself is checked against them (``check_size``).
    ``{sizes}`` in the description becomes the list of allowed sizes."""

    axis: int

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        values = sorted({size[self.axis] for size in sizes})
        return {"type": "integer", "enum": values, "description": self.description.format(sizes=size_list(sizes))}


@dataclass(frozen=True, kw_only=True)
class WorkflowName(Field):
    """A workflow's name; which names are allowed is the worker's allowlist (``Generator.pick``)."""

    def check(self, value: Any) -> str:
        if not (isinstance(value, str) and WORKFLOW_NAME.fullmatch(value)):
            got = _kind(value) if not isinstance(value, str) else repr(value[:80])
            raise self.refuse(f"must be a workflow name (letters, digits, '_', '-', '.'), got {got}")
        return value

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment | None:
        if not workflows:
            return None
        return {"type": "string", "enum": list(workflows), "description": self.description}


@dataclass(frozen=True, kw_only=True)
class Boolean(Field):
    """``true`` or ``false``; no other JSON value (0, 1, "true") stands for one."""

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.refuse(f"must be true or false, got {_kind(value)}")
        return value

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        return self.documented({"type": "boolean"})


@dataclass(frozen=True, kw_only=True)
class Choice(Field):
    """One of a few strings, exactly as written (case included)."""

    values: tuple[str, ...]

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            got = repr(value[:80]) if isinstance(value, str) else _kind(value)
            raise self.refuse(f"must be one of {', '.join(repr(v) for v in self.values)}, got {got}")
        return value

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        return self.documented({"type": "string", "enum": list(self.values)})


# The input contract: every field, in the order the fields are checked (the first bad one is reported).
CONTRACT: tuple[Field, ...] = (
    Text(name="prompt", required=True, description=f"What to draw; must not be blank. {prompt_syntax.RULES}"),
    Text(
        name="negative_prompt",
        description=f"What to avoid; omitted means the workflow's default. {prompt_syntax.RULES}",
    ),
    Integer(
        name="seed",
        low=0,
        high=MAX_SEED,
        description="Sampler seed; omitted means a random seed, reported in `info.seed`.",
    ),
    Side(
        name="width",
        axis=0,
        low=MIN_SIDE,
        high=MAX_SIDE,
        together="height",
        description="Given together with `height`, as one of: {sizes}.",
    ),
    Side(
        name="height", axis=1, low=MIN_SIDE, high=MAX_SIDE, together="width", description="Given together with `width`."
    ),
    WorkflowName(name="workflow", description="A named workflow; omitted means the production one."),
    Boolean(
        name="trim",
        default=False,
        description="Crop the image to the box of its visible pixels (alpha > 0); `info.crop` is the box cut.",
    ),
    Integer(
        name="trim_margin",
        low=0,
        high=MAX_TRIM_MARGIN,
        default=0,
        only_with="trim",
        description="Only with `trim: true`: transparent pixels kept around the box, clipped to the canvas.",
    ),
    Choice(
        name="format",
        values=FORMATS,
        default="png",
        description="`png`, or `webp`: lossless WebP, every pixel with alpha > 0 exact (RGB under alpha 0 is not "
        "kept).",
    ),
    Choice(
        name="delivery",
        values=DELIVERIES,
        description="RunPod door only: `inline` (omitted: `url` is a data URI, and `image_base64`), `base64` "
        "(`image_base64` only), or `bucket` (uploaded; `url` is its presigned URL; needs a configured bucket).",
    ),
)
FIELDS = tuple(spec.name for spec in CONTRACT)


def _check_object(data: Any) -> Mapping[str, Any]:
    """The rules on the input as a whole: an object, with no key the contract does not declare."""
    if not isinstance(data, Mapping):
        raise InputError(f"input must be a JSON object, got {_kind(data)}")
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        raise InputError(f"unknown field '{unknown[0]}'; allowed fields: {', '.join(FIELDS)}", field=unknown[0])
    return data


def _check_together(first: str, second: str, values: Mapping[str, Any]) -> None:
    """Once both fields of a pair were read: both given, or neither."""
    if (values[first] is None) != (values[second] is None):
        missing = second if values[second] is None else first
        raise InputError(f"'{first}' and '{second}' must be given together; '{missing}' is missing", field=missing)


def _check_only_with(spec: Field, data: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """A field that applies only when a boolean is true was given without it: refused, not ignored."""
    if spec.only_with is not None and spec.name in data and values[spec.only_with] is not True:
        raise spec.refuse(f"applies only with '{spec.only_with}': true")


@dataclass(frozen=True)
class Request:
    """A valid job input; its fields are ``CONTRACT``'s, in its order (tests/unit/test_input_schema.py)."""

    prompt: str
    negative_prompt: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    workflow: str | None = None
    trim: bool = False
    trim_margin: int = 0
    format: str = "png"
    delivery: str | None = None  # the RunPod door's; None: inline

    @classmethod
    def parse(cls, data: Any) -> Request:
        """Validate raw job input; raises InputError naming the first bad field."""
        data = _check_object(data)
        values: dict[str, Any] = {}
        for spec in CONTRACT:
            values[spec.name] = spec.parse(data)
            if spec.together in values:  # the pair's second field: both are read now
                _check_together(spec.together, spec.name, values)
            _check_only_with(spec, data, values)
        return cls(**values)


def input_schema(sizes: Sizes, workflows: Sequence[str] = (), *, without: Sequence[str] = ()) -> dict[str, Any]:
    """JSON Schema of the job input, for the OpenAPI document, from ``CONTRACT``. ``without`` names fields a door
    does not take (the alpha API refuses ``delivery``)."""
    specs = [spec for spec in CONTRACT if spec.name not in without]
    properties = {spec.name: fragment for spec in specs if (fragment := spec.schema(sizes, workflows)) is not None}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [spec.name for spec in specs if spec.required],
        "properties": properties,
        "dependentRequired": {spec.name: [spec.together] for spec in specs if spec.together},
        "dependentSchemas": {
            spec.name: {"required": [spec.only_with], "properties": {spec.only_with: {"const": True}}}
            for spec in specs
            if spec.only_with
        },
    }
