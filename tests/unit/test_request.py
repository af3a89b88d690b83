"""Request.parse: every door validates input the same way, with a stable code and the field named."""

from __future__ import annotations

import pytest

from handler.errors import InputError, error_body
from handler.generate import Generator
from handler.request import MAX_SEED, Request, check_size
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.cases import BAD_BODIES, CORPUS, VALID_PROMPTS, BadInput
from tests.helpers import assert_error
from tests.layer_images import offline

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


@pytest.mark.parametrize(
    ("size", "field", "why"),
    [
        ((1000, 1000), "width", "no allowed size is 1000 wide"),
        ((512, 512), "width", "no allowed size is 512 wide"),
        ((1024, 768), "height", "with 'width' 1024, 'height' must be 1024"),
        ((1344, 1344), "height", "with 'width' 1344, 'height' must be 768"),
    ],
)
def test_sizes_the_workflow_does_not_declare(size: tuple[int, int], field: str, why: str) -> None:
    """The error names the side that is off, as the schema's per-side enums and pairs do."""
    Request.parse({"prompt": "x", "width": size[0], "height": size[1]})  # the shape is fine
    with pytest.raises(InputError) as caught:
        check_size(size[0], size[1], SIZES)
    assert caught.value.field == field
    assert caught.value.message == (
        f"size {size[0]}x{size[1]} ('width' x 'height') is not allowed: {why}; allowed sizes: "
        "1024x1024, 1152x896, 896x1152, 1216x832, 832x1216, 1344x768, 768x1344, 1536x640, 640x1536"
    )


def test_a_side_with_two_partners_lists_both() -> None:
    with pytest.raises(InputError, match="with 'width' 1024, 'height' must be 1024 or 640;") as caught:
        check_size(1024, 768, [(1024, 1024), (640, 1024), (1024, 640)])
    assert caught.value.field == "height"


@pytest.mark.parametrize(
    ("value", "parsed"), [(7.0, 7), (1e3, 1000), (0.0, 0), (-0.0, 0), (2.0**53 - 1, 2**53 - 1), (7, 7)]
)
def test_an_integral_number_is_an_integer(value: float, parsed: int) -> None:
    """JSON Schema's rule, which generated clients follow: 7.0 and 1e3 are integers. The parse returns an int."""
    request = Request.parse({"prompt": "x", "seed": value, "trim": True, "trim_margin": value if parsed < 513 else 0})
    assert request.seed == parsed and type(request.seed) is int and type(request.trim_margin) is int
    sized = Request.parse({"prompt": "x", "width": 1024.0, "height": 1e3 + 24})
    assert (sized.width, sized.height) == (1024, 1024) and type(sized.width) is int and type(sized.height) is int


def test_limits_are_inclusive() -> None:
    assert Request.parse({"prompt": "p" * 2000, "negative_prompt": "n" * 2000, "seed": 0}).seed == 0


GENERATOR = offline(Generator(Settings()))


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_the_bad_input_corpus(case: BadInput) -> None:
    """What every door runs before it submits: Request.parse, then the workflow and size check and the input
    image's decode (Generator.prepare)."""
    with pytest.raises(InputError) as caught:
        GENERATOR.prepare(Request.parse(case.job_input))
    assert_error(error_body(caught.value), "invalid_input", case.field, words=case.words)
    if case.field is not None:
        assert f"'{case.field}'" in caught.value.message, "the message names the field"


def test_the_corpus_is_large_and_named_uniquely() -> None:
    assert len(CORPUS) >= 40 and len({c.id for c in CORPUS}) == len(CORPUS)
    assert len({b.id for b in BAD_BODIES}) == len(BAD_BODIES)


@pytest.mark.parametrize("prompt", VALID_PROMPTS)
def test_odd_but_valid_prompts_pass_unchanged(prompt: str) -> None:
    request = Request.parse({"prompt": prompt})
    assert request.prompt == prompt.strip() and GENERATOR.pick(request).name == "alpha_txt2img"
