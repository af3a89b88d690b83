"""The kinds of input field the contract (``handler.request.CONTRACT``) is made of. Each one both checks a value
(``check``, raising InputError that names the field) and states itself in JSON Schema (``schema``), so the two
cannot drift apart."""

from __future__ import annotations

import functools
import json
import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handler import image_input, prompt_syntax
from handler.errors import InputError

MAX_PROMPT_CHARS = 2000
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Sizes = Sequence[tuple[int, int]]
Fragment = dict[str, Any]


def size_list(sizes: Sizes) -> str:
    return ", ".join(f"{w}x{h}" for w, h in sizes)


def kind(value: Any) -> str:
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


def _invisible(char: str) -> bool:
    """Whitespace (as ``str.strip`` sees it) or an invisible format character (zero-width space, joiners, marks)."""
    return char.isspace() or unicodedata.category(char) == "Cf"


def _visible(text: str) -> bool:
    """Anything besides whitespace and invisible format characters?"""
    return not all(_invisible(char) for char in text)


def _class_char(code: int) -> str:
    """A code point inside a regex character class, written so ECMA-262 (JSON Schema's dialect, with or without
    its ``u`` flag), Python's ``re`` and Rust's ``regex`` read it alike: ``\\uXXXX`` in the BMP, the character
    itself beyond it (ECMA has no four-digit escape there, and ``\\u{...}`` is not Python's)."""
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


@functools.cache
def visible_pattern() -> str:
    """A JSON Schema ``pattern`` that holds where a string has a visible character (``_visible``): a class of every
    character but the invisible ones, as ranges of code points. Built once (a pass over Unicode: ~0.3 s)."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if _invisible(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    body = "".join(_class_char(a) if a == b else f"{_class_char(a)}-{_class_char(b)}" for a, b in ranges)
    return f"[^{body}]"


# What a prompt may not contain, as a pattern its schema's ``not`` states: NUL (ComfyUI's text encoders end a
# string there) and ComfyUI's embedding syntax (handler.prompt_syntax, letters and a colon: no escaping needed in
# any dialect).
FORBIDDEN_PATTERN = f"\\u0000|{prompt_syntax.EMBEDDING}"


@dataclass(frozen=True, kw_only=True)
class Field:
    """One input field: how its value is checked (``check``) and how JSON Schema states it (``schema``).
    ``together`` names a field that must be given with this one (``dependentRequired``)."""

    name: str
    description: str
    required: bool = False
    together: str | None = None
    # The field may be given only when that field has the value ``only_value`` (``dependentSchemas``).
    only_with: str | None = None
    only_value: Any = True
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

    @property
    def condition(self) -> str:
        """Where ``only_with`` applies, as the JSON that states it: ``'trim': true``, ``'mode': "foreground"``."""
        return f"'{self.only_with}': {json.dumps(self.only_value)}"

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
            raise self.refuse(f"must be a string, got {kind(value)}{hint}")
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
        """The length, no NUL and no ``embedding:``, and for a required text a visible character. The prompt
        weights and the depth of parentheses (``handler.prompt_syntax``) are beyond what a pattern can count."""
        fragment: Fragment = {"type": "string", "maxLength": self.max_length}
        if self.required:
            fragment.update(minLength=1, pattern=visible_pattern())
        return {**fragment, "not": {"pattern": FORBIDDEN_PATTERN}, "description": self.description}


@dataclass(frozen=True, kw_only=True)
class Integer(Field):
    """An integer from ``low`` to ``high``, by JSON Schema's rule: a number whose fraction is zero is an integer
    (``7.0`` and ``1e3`` are 7 and 1000), which is what generated clients send. Booleans are not numbers there,
    nor here; ``7.5``, NaN and the infinities are refused."""

    low: int
    high: int

    def check(self, value: Any) -> int:
        # bool is a subclass of int: refuse it explicitly.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.refuse(f"must be an integer, got {kind(value)}")
        if isinstance(value, float) and not value.is_integer():
            raise self.refuse(f"must be an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise self.refuse(f"must be from {self.low} to {self.high}, got {value!r}")
        return int(value)

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
            got = kind(value) if not isinstance(value, str) else repr(value[:80])
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
            raise self.refuse(f"must be true or false, got {kind(value)}")
        return value

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        return self.documented({"type": "boolean"})


@dataclass(frozen=True, kw_only=True)
class Choice(Field):
    """One of a few strings, exactly as written (case included)."""

    values: tuple[str, ...]

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            got = repr(value[:80]) if isinstance(value, str) else kind(value)
            raise self.refuse(f"must be one of {', '.join(repr(v) for v in self.values)}, got {got}")
        return value

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        return self.documented({"type": "string", "enum": list(self.values)})


@dataclass(frozen=True, kw_only=True)
class ImageData(Field):
    """An input image as base64 or a data URI, checked from its container and header
    (``handler.image_input.parse``; its pixels are decoded in the job); with ``need_alpha``, a transparent one."""

    need_alpha: bool = False

    def check(self, value: Any) -> image_input.InputImage:
        return image_input.parse(value, self.name, need_alpha=self.need_alpha)

    def schema(self, sizes: Sizes, workflows: Sequence[str]) -> Fragment:
        limit = image_input.MAX_BASE64_CHARS
        return {"type": "string", "minLength": 1, "maxLength": limit, "description": self.description}
