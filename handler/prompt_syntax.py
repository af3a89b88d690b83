"""ComfyUI's prompt syntax, a rule of the input contract (pure; mirrors ``comfy/sd1_clip.py`` at the pin).

ComfyUI's text encoders read two things in prompt text besides words:

* **Weights.** ``(words)`` multiplies the weight of ``words`` by 1.1 per level of parentheses, and
  ``(words:1.3)`` sets it; the weight scales how far the words' embedding lies from the empty prompt's.
  ``float()`` parses the number, so ``nan``, ``inf`` and ``1e308`` pass, and each level of parentheses is a
  level of recursion (about 1,000 levels end in ``RecursionError``). Either makes a whole job run and then
  fail late (a flat alpha, or ``execution_error``), so both are refused here: every weight must be finite
  and within ``MAX_WEIGHT`` of zero, and nesting at most ``MAX_DEPTH`` levels deep. ``MAX_WEIGHT`` is 10:
  common practice stays within 0.5-1.5, plain nesting reaches it after 24 levels (1.1^24 = 9.85), and
  further from zero the conditioning leaves anything the model was trained on.
* **Embeddings.** ``embedding:<name>`` loads a textual-inversion file. The image ships none, so the name is
  never found, and ComfyUI logs it verbatim at WARNING: prompt text in the log, with any line breaks it
  carries. The syntax is refused.
"""

from __future__ import annotations

import contextlib
import math

from handler.errors import InputError

MAX_WEIGHT = 10.0
MAX_DEPTH = 32
NESTING_WEIGHT = 1.1  # ComfyUI's factor for one level of parentheses
EMBEDDING = "embedding:"  # ComfyUI's identifier, case-sensitive
RULES = (
    f"ComfyUI's prompt weights apply, `(words:1.2)`, from {-MAX_WEIGHT:g} to {MAX_WEIGHT:g} (each level of "
    f"parentheses multiplies by {NESTING_WEIGHT}), at most {MAX_DEPTH} levels deep; `{EMBEDDING}` is refused."
)


def _escape(text: str) -> str:
    """``\\(`` and ``\\)`` are literal parentheses (ComfyUI's ``escape_important``)."""
    return text.replace("\\)", "\0\1").replace("\\(", "\0\2")


def depth(text: str) -> int:
    """The deepest level of parentheses ComfyUI's parser reaches."""
    level = deepest = 0
    for char in _escape(text):
        if char == "(":
            level += 1
            deepest = max(deepest, level)
        elif char == ")":
            level -= 1
    return deepest


def _groups(text: str) -> list[str]:
    """Top-level pieces: plain text and whole parenthesised groups (ComfyUI's ``parse_parentheses``)."""
    pieces: list[str] = []
    current, level = "", 0
    for char in text:
        if char == "(" and level == 0:
            if current:
                pieces.append(current)
            current = "("
        elif char == ")" and level == 1:
            pieces.append(current + ")")
            current = ""
        else:
            current += char
        level += {"(": 1, ")": -1}.get(char, 0)
    if current:
        pieces.append(current)
    return pieces


def weights(text: str, current: float = 1.0) -> list[float]:
    """The weight of every piece of text, as ComfyUI's ``token_weights`` computes it."""
    found: list[float] = []
    for piece in _groups(text):
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner, weight = piece[1:-1], current * NESTING_WEIGHT
            colon = inner.rfind(":")
            if colon > 0:
                with contextlib.suppress(ValueError):  # not a number: the colon is text
                    weight, inner = float(inner[colon + 1 :]), inner[:colon]
            found += weights(inner, weight)
        else:
            found.append(current)
    return found


def check(text: str, field: str) -> None:
    """Raise ``InputError`` naming ``field`` for syntax ComfyUI would turn into a late failure or a log line."""
    if EMBEDDING in text:
        raise InputError(
            f"'{field}' uses '{EMBEDDING}', ComfyUI's textual-inversion syntax; this worker has no embeddings "
            "(write 'embedding :' for the word itself)",
            field=field,
        )
    deepest = depth(text)
    if deepest > MAX_DEPTH:
        raise InputError(f"'{field}' nests parentheses {deepest} levels deep; the limit is {MAX_DEPTH}", field=field)
    for weight in weights(_escape(text)):
        if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
            raise InputError(
                f"'{field}' has a prompt weight of {weight:g}; weights must be numbers from {-MAX_WEIGHT:g} to "
                f"{MAX_WEIGHT:g} (each level of parentheses multiplies by {NESTING_WEIGHT})",
                field=field,
            )
