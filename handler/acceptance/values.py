"""Values read from an endpoint's answers, which may be anything JSON holds: a number where a string belongs, a
list nested hundreds deep, an escape sequence for the terminal. Each is taken only at the type it should have,
and shown only as short, printable text, so nothing the endpoint sends reaches a terminal, a report or a
recursive ``repr`` as it came."""

from __future__ import annotations

import math
from typing import Any

MAX_TEXT = 300


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """Text from outside, cut at ``limit`` characters, its control characters escaped (``\\x1b``)."""
    cut = text[:limit]
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return safe + ("..." if len(text) > limit else "")


def shown(value: Any, limit: int = MAX_TEXT) -> str:
    """Any value as short text: a string or a number as itself, a list or an object by its size only."""
    if isinstance(value, str):
        return printable(value, limit)
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    return printable(repr(value), limit)  # None, a bool or a number


def string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def obj(value: Any) -> dict[str, Any]:
    """An object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def integers(value: Any, count: int) -> list[int] | None:
    """A list of exactly ``count`` integers (a size, a box), else None."""
    if not isinstance(value, list) or len(value) != count:
        return None
    found = [integer(item) for item in value]
    return [item for item in found if item is not None] if None not in found else None


def numbers(value: Any, limit: int = 50) -> dict[str, float] | None:
    """An object of named figures (the worker's ``timings_ms``): its number values, at most ``limit`` of them."""
    if not isinstance(value, dict):
        return None
    found = {printable(str(key), 60): number(item) for key, item in list(value.items())[:limit]}
    return {key: item for key, item in found.items() if item is not None}
