"""Request.parse: every door validates input the same way, with a stable code and the field named."""

from __future__ import annotations

from typing import Any

import pytest

from handler.errors import InputError
from handler.generate import Generator
from handler.request import MAX_SEED, Request, check_size
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.cases import BAD_BODIES, CORPUS, VALID_PROMPTS, BadInput

SIZES = Workflow.load(Settings().workflow).sizes


def test_minimal_input() -> None:
    assert Request.parse({"prompt": "  a glass apple \n"}) == Request(prompt="a glass apple")


def test_full_input() -> None:
    request = Request.parse({"prompt": "cat", "negative_prompt": "", "seed": MAX_SEED, "width": 832, "height": 1216})
    assert request == Request("cat", "", MAX_SEED, 832, 1216)


@pytest.mark.parametrize("size", SIZES)
def test_every_size_the_production_workflow_allows(size: tuple[int, int]) -> None:
    request = Request.parse({"prompt": "x", "width": size[0], "height": size[1]})
    assert (request.width, request.height) == size
    check_size(size[0], size[1], SIZES)
    assert size[0] % 64 == 0 and size[1] % 64 == 0


def test_the_production_sizes_are_sdxl_buckets() -> None:
    assert len(SIZES) == 9 and (1024, 1024) in SIZES
    assert all(abs(w * h - 1024 * 1024) <= 0.07 * 1024 * 1024 for w, h in SIZES), "about one megapixel each"


@pytest.mark.parametrize("size", [(1000, 1000), (512, 512), (1024, 768)])
def test_sizes_the_workflow_does_not_declare(size: tuple[int, int]) -> None:
    Request.parse({"prompt": "x", "width": size[0], "height": size[1]})  # the shape is fine
    with pytest.raises(
        InputError,
        match=rf"size {size[0]}x{size[1]} \('width' x 'height'\) is not allowed; "
        "allowed sizes: 1024x1024, ",
    ) as caught:
        check_size(size[0], size[1], SIZES)
    assert caught.value.field == "width"


def test_limits_are_inclusive() -> None:
    assert Request.parse({"prompt": "p" * 2000, "negative_prompt": "n" * 2000, "seed": 0}).seed == 0


BAD: list[tuple[str, Any, str | None, str]] = [
    ("not an object", ["prompt"], None, "JSON object"),
    ("string input", "a cat", None, "JSON object"),
    ("null input", None, None, "JSON object"),
    ("missing prompt", {}, "prompt", "required"),
    ("empty prompt", {"prompt": ""}, "prompt", "empty"),
    ("blank prompt", {"prompt": " \t\n"}, "prompt", "empty"),
    ("null prompt", {"prompt": None}, "prompt", "string"),
    ("invisible prompt", {"prompt": "\u200b\u200d\u2060 \ufeff"}, "prompt", "no visible characters"),
    ("number prompt", {"prompt": 3}, "prompt", "string"),
    ("list prompt", {"prompt": ["a"]}, "prompt", "string"),
    ("long prompt", {"prompt": "p" * 2001}, "prompt", "2000"),
    ("NUL in prompt", {"prompt": "a\x00b"}, "prompt", "NUL"),
    ("lone surrogate", {"prompt": "a\ud800b"}, "prompt", "Unicode"),
    ("long negative", {"prompt": "x", "negative_prompt": "n" * 2001}, "negative_prompt", "2000"),
    ("null negative", {"prompt": "x", "negative_prompt": None}, "negative_prompt", "omit"),
    ("number negative", {"prompt": "x", "negative_prompt": 1}, "negative_prompt", "string"),
    ("bool seed", {"prompt": "x", "seed": True}, "seed", "integer"),
    ("float seed", {"prompt": "x", "seed": 1.0}, "seed", "integer"),
    ("string seed", {"prompt": "x", "seed": "1"}, "seed", "integer"),
    ("null seed", {"prompt": "x", "seed": None}, "seed", "integer"),
    ("negative seed", {"prompt": "x", "seed": -1}, "seed", "from 0"),
    ("huge seed", {"prompt": "x", "seed": MAX_SEED + 1}, "seed", "from 0"),
    ("width alone", {"prompt": "x", "width": 1024}, "height", "together"),
    ("height alone", {"prompt": "x", "height": 1024}, "width", "together"),
    ("huge width", {"prompt": "x", "width": 8256, "height": 1024}, "width", "from 64"),
    ("bad workflow name", {"prompt": "x", "workflow": "../etc/passwd"}, "workflow", "workflow name"),
    ("number workflow", {"prompt": "x", "workflow": 3}, "workflow", "workflow name"),
    ("string width", {"prompt": "x", "width": "1024", "height": 1024}, "width", "integer"),
    ("float height", {"prompt": "x", "width": 1024, "height": 1024.0}, "height", "integer"),
    ("zero width", {"prompt": "x", "width": 0, "height": 1024}, "width", "from 64"),
    ("unknown key", {"prompt": "x", "steps": 50}, "steps", "unknown field"),
    ("unknown key only", {"promt": "x"}, "promt", "unknown field"),
]


@pytest.mark.parametrize(("data", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(data: Any, field: str | None, words: str) -> None:
    with pytest.raises(InputError) as caught:
        Request.parse(data)
    assert caught.value.code == "invalid_input"
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value).startswith("invalid_input: ")
    if field is not None:
        assert f"'{field}'" in caught.value.message


GENERATOR = Generator(Settings())


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_the_bad_input_corpus(case: BadInput) -> None:
    """What every door runs before it submits: Request.parse, then the workflow and size check."""
    with pytest.raises(InputError) as caught:
        GENERATOR.pick(Request.parse(case.job_input))
    assert (caught.value.code, caught.value.field) == ("invalid_input", case.field)
    assert case.words in caught.value.message


def test_the_corpus_is_large_and_named_uniquely() -> None:
    assert len(CORPUS) >= 40 and len({c.id for c in CORPUS}) == len(CORPUS)
    assert len({b.id for b in BAD_BODIES}) == len(BAD_BODIES)


@pytest.mark.parametrize("prompt", VALID_PROMPTS)
def test_odd_but_valid_prompts_pass_unchanged(prompt: str) -> None:
    request = Request.parse({"prompt": prompt})
    assert request.prompt == prompt.strip() and GENERATOR.pick(request).name == "alpha_txt2img"
