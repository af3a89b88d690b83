"""ComfyUI's prompt syntax as the worker checks it: the weights it computes match ComfyUI's own parser (its
source at the pin, run here without torch), and what would fail late or reach the log is refused."""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from handler import prompt_syntax as prompt
from handler.errors import InputError
from handler.settings import Settings

PARSER_FUNCTIONS = {"parse_parentheses", "token_weights", "escape_important", "unescape_important"}


@pytest.fixture(scope="module")
def comfy_weights() -> Callable[[str], list[float]]:
    """ComfyUI's own weight parser, compiled from the pinned ``comfy/sd1_clip.py``."""
    source = Settings.from_env().comfyui_dir / "comfy" / "sd1_clip.py"
    if not source.is_file():
        pytest.fail(f"no ComfyUI at {source.parent.parent}: run scripts/setup.sh")
    tree = ast.parse(source.read_text())
    kept: list[ast.stmt] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in PARSER_FUNCTIONS]
    assert {getattr(node, "name", "") for node in kept} == PARSER_FUNCTIONS, (
        "ComfyUI's parser changed: review handler.comfyui.prompt"
    )
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(source), "exec"), namespace)

    def weights(text: str) -> list[float]:
        return [weight for _, weight in namespace["token_weights"](namespace["escape_important"](text), 1.0)]

    return weights


def same(ours: list[float], theirs: list[float]) -> bool:
    return len(ours) == len(theirs) and all(
        (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(ours, theirs, strict=True)
    )


def test_the_weights_match_comfyuis_parser(comfy_weights: Callable[[str], list[float]]) -> None:
    rng = random.Random(20261201)
    alphabet = ["(", ")", ":", "\\", "a", " ", "1", ".", "5", "e", "-", "nan", "inf", "(", ")"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(40))) for _ in range(4000)]
    texts += ["(apple:1.2)", "((apple))", r"\(literal\)", "a: b", "(a:b)", "((a:0.5) b)", ")(", "((a)", "(a))"]
    for text in texts:
        assert same(prompt.weights(prompt._escape(text)), comfy_weights(text)), text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("(apple:nan)", "weight of nan"),
        ("(apple:inf)", "weight of inf"),
        ("(apple:1e308)", "weight of 1e+308"),
        ("(apple:-1e308)", "weight of -1e+308"),
        ("(apple:10.5)", "weight of 10.5"),
        ("(" * 25 + "apple" + ")" * 25, "weight of 10.8347"),
        ("(" * 900 + "apple" + ")" * 900, "nests parentheses 900 levels deep"),
        ("(" * 997 + "apple" + ")" * 997, "nests parentheses 997 levels deep"),
        ("a cat embedding:zz", "uses 'embedding:'"),
        ("embedding:my private negative", "uses 'embedding:'"),
        ("a (embedding:x:1.2)", "uses 'embedding:'"),
    ],
)
def test_what_would_fail_late_or_reach_the_log_is_refused(text: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        prompt.check(text, "negative_prompt")
    assert caught.value.field == "negative_prompt" and words in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "a glass apple",
        "(apple:1.2), ((shiny))",
        "(apple:-10) (pear:10)",
        "(" * 24 + "apple" + ")" * 24,
        "(" * 31 + "(apple:1)" + ")" * 31,
        r"\(literal parentheses\)",
        "ratio 16:9, (a:b)",
        "embedding : the word",
        "unbalanced ((( or )))",
    ],
)
def test_ordinary_prompts_pass(text: str) -> None:
    prompt.check(text, "prompt")
