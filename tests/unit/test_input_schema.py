"""The input contract (handler/request.py ``CONTRACT``): the published schema is pinned (the OpenAPI document
serves it), and it agrees with ``Request.parse`` field by field."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import jsonschema_rs
import pytest

from handler.errors import InputError
from handler.fields import FORBIDDEN_PATTERN, Field, ImageData, Side, _visible, visible_pattern
from handler.generate import Generator
from handler.image_input import MAX_BASE64_CHARS
from handler.paths import REPO
from handler.prompt_syntax import RULES
from handler.request import CONTRACT, FIELDS, Request, SizeTable, input_schema
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.layer_images import BACKGROUND, FOREGROUND, offline

SIZES = Workflow.load(Settings().workflow).sizes
SHIPPED = [640, 768, 832, 896, 1024, 1152, 1216, 1344, 1536]

PINNED: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["prompt"],
    "properties": {
        "prompt": {
            "type": "string",
            "maxLength": 2000,
            "minLength": 1,
            "pattern": visible_pattern(),
            "not": {"pattern": FORBIDDEN_PATTERN},
            "description": "What to draw; must not be blank. " + RULES,
        },
        "negative_prompt": {
            "type": "string",
            "maxLength": 2000,
            "not": {"pattern": FORBIDDEN_PATTERN},
            "description": "What to avoid; omitted means the workflow's default. " + RULES,
        },
        "seed": {
            "type": "integer",
            "minimum": 0,
            "maximum": 9007199254740991,
            "description": "Sampler seed; omitted means a random seed, reported in `info.seed`.",
        },
        "width": {
            "type": "integer",
            "enum": SHIPPED,
            "description": "Given together with `height`, as one of: 1024x1024, 1152x896, 896x1152, 1216x832, "
            "832x1216, 1344x768, 768x1344, 1536x640, 640x1536.",
        },
        "height": {"type": "integer", "enum": SHIPPED, "description": "Given together with `width`."},
        "trim": {
            "type": "boolean",
            "default": False,
            "description": "Crop the image to the box of its visible pixels (alpha > 0); `info.crop` is the box cut.",
        },
        "trim_margin": {
            "type": "integer",
            "minimum": 0,
            "maximum": 512,
            "default": 0,
            "description": "Only with `trim: true`: transparent pixels kept around the box, clipped to the canvas.",
        },
        "format": {
            "type": "string",
            "enum": ["png", "webp"],
            "default": "png",
            "description": "`png`, or `webp`: lossless WebP, every pixel with alpha > 0 exact (RGB under alpha 0 is "
            "not kept).",
        },
        "mode": {
            "type": "string",
            "enum": ["text", "foreground", "background"],
            "default": "text",
            "description": "`text`: a transparent image from the prompt. `foreground`: a transparent foreground that "
            "fits the given `background`. `background`: a background that fits the given transparent `foreground`. "
            "The layer modes also return the blended picture in `layers.blended`.",
        },
        "workflow": {
            "type": "string",
            "enum": ["alpha_txt2img", "alpha_txt2img_conv"],
            "description": "A named workflow; omitted means the production one. Only with `mode: text` (the layer "
            "modes have theirs).",
        },
        "background": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_BASE64_CHARS,
            "description": "With `mode: foreground` (and only then): the background, as base64 or a data URI of a "
            'PNG, JPEG or WebP; fitted to the nearest allowed size (README, "Layer modes").',
        },
        "foreground": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_BASE64_CHARS,
            "description": "With `mode: background` (and only then): the transparent subject, as base64 or a data URI "
            "of a PNG or WebP with an alpha channel that is not flat; fitted like `background`.",
        },
        "delivery": {
            "type": "string",
            "enum": ["inline", "base64", "bucket"],
            "description": "RunPod door only: `inline` (omitted: `url` is a data URI, and `image_base64`), `base64` "
            "(`image_base64` only), or `bucket` (uploaded; `url` is its presigned URL; needs a configured bucket).",
        },
    },
    "dependentRequired": {"width": ["height"], "height": ["width"]},
    "dependentSchemas": {
        "trim_margin": {"required": ["trim"], "properties": {"trim": {"const": True}}},
        "workflow": {"properties": {"mode": {"const": "text"}}},  # an absent mode is text
        "background": {"required": ["mode"], "properties": {"mode": {"const": "foreground"}}},
        "foreground": {"required": ["mode"], "properties": {"mode": {"const": "background"}}},
        # Given a width (and so a height), the pair is an allowed one.
        "width": {"oneOf": [{"properties": {"width": {"const": w}, "height": {"const": h}}} for w, h in SIZES]},
    },
    "allOf": [
        {
            "if": {"required": ["mode"], "properties": {"mode": {"const": "foreground"}}},
            "then": {"required": ["background"]},
        },
        {
            "if": {"required": ["mode"], "properties": {"mode": {"const": "background"}}},
            "then": {"required": ["foreground"]},
        },
    ],
}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal, key order included (the document is served as JSON)."""
    return json.dumps(a) == json.dumps(b)


def test_the_schema_with_named_workflows_is_pinned() -> None:
    assert same(input_schema(SIZES, ["alpha_txt2img", "alpha_txt2img_conv"]), PINNED)


def test_without_named_workflows_the_schema_has_no_workflow_property() -> None:
    pinned = json.loads(json.dumps(PINNED))
    del pinned["properties"]["workflow"], pinned["dependentSchemas"]["workflow"]
    assert same(input_schema(SIZES), pinned)


def test_the_alpha_api_schema_leaves_out_delivery() -> None:
    pinned = json.loads(json.dumps(PINNED))
    del pinned["properties"]["delivery"]
    assert same(input_schema(SIZES, ["alpha_txt2img", "alpha_txt2img_conv"], without=("delivery",)), pinned)


def test_size_enums_are_sorted_and_unique_per_axis() -> None:
    schema = input_schema([(640, 1536), (1024, 1024), (1024, 640)], ("b", "a"))
    width, height = schema["properties"]["width"], schema["properties"]["height"]
    assert (width["enum"], height["enum"]) == ([640, 1024], [640, 1024, 1536])
    assert width["description"] == "Given together with `height`, as one of: 640x1536, 1024x1024, 1024x640."
    assert schema["properties"]["workflow"]["enum"] == ["b", "a"], "the allowlist's order"


# A worker with named workflows: every field is offered, and what every door runs before it submits
# (Request.parse, then Generator.pick: the allowlist and the width x height pair) is the validation.
NAMED = tuple(REPO / "workflows" / f"{name}.json" for name in ("alpha_txt2img", "alpha_txt2img_conv"))
GENERATOR = offline(Generator(Settings().replace(workflow_allowlist=NAMED)))
SCHEMA = input_schema(SIZES, list(GENERATOR.allowed))
PROPERTIES: dict[str, Any] = SCHEMA["properties"]
# The keywords the probes below know; a new one in a field's schema needs its probes first.
# ("default" is what an absent field parses to: test_absent_fields_parse_to_the_schemas_default.)
KEYWORDS = {"type", "minimum", "maximum", "minLength", "maxLength", "enum", "default", "description", "pattern", "not"}
WRONG_TYPES: dict[str, list[Any]] = {
    "string": [None, True, 0, 1.5, [], {}],
    "integer": [None, True, 1.5, "7", [], {}, float("nan"), float("inf")],
    "boolean": [None, 0, 1, "true", "false", [], {}],
}


def validate(data: dict[str, Any]) -> Request:
    request = Request.parse(data)
    GENERATOR.pick(request)
    return request


def probes(fragment: dict[str, Any]) -> list[tuple[Any, bool]]:
    """Values at the bounds the fragment states (the schema accepts them), and values just past them or of
    another JSON type (it refuses them): (value, accepted)."""
    assert set(fragment) <= KEYWORDS, f"no probes for {set(fragment) - KEYWORDS}"
    cases: list[tuple[Any, bool]] = [(value, False) for value in WRONG_TYPES[fragment["type"]]]
    if fragment["type"] == "boolean":
        cases += [(True, True), (False, True)]
    if fragment["type"] == "string" and "enum" not in fragment:
        shortest, longest = fragment.get("minLength", 0), fragment["maxLength"]
        cases += [("a" * shortest, True), ("a" * longest, True), ("a" * (longest + 1), False)]
        cases += [("a" * (shortest - 1), False)] if shortest else []
    if "pattern" in fragment:  # a visible character
        cases += [(" \u200b\t\ufeff\U000e0020 ", False), ("\u200bx\u200d", True), ("\U0001f34e", True)]
    if "not" in fragment:  # no NUL, no embedding syntax
        cases += [("a\x00b", False), ("a embedding:b", False), ("a embedding :b", True), ("Embedding:b", True)]
    if "minimum" in fragment:
        low, high = fragment["minimum"], fragment["maximum"]
        cases += [(low, True), (high, True), (low - 1, False), (high + 1, False)]
        # JSON Schema's integers: an integral number is one (parsed as the int), a fraction is not.
        cases += [(float(low), True), (float(high), True), (low + 0.5, False), (float(high + 1), False)]
    if "enum" in fragment:
        values = fragment["enum"]
        cases += [(value, True) for value in values]
        if fragment["type"] == "integer":
            cases += [(float(values[0]), True), (values[0] + 0.5, False)]
            gap = next(v for v in range(min(values), max(values)) if v not in values)
            cases += [(min(values) - 1, False), (max(values) + 1, False), (gap, False)]
        else:
            cases += [(f"{values[0]}_unlisted", False)]
    return cases


def job(spec: Field, value: Any, accepted: bool) -> dict[str, Any]:
    """An input with ``value`` for the field and valid values elsewhere; a side comes with its partner, which
    makes an allowed size with an accepted value."""
    data: dict[str, Any] = {"prompt": "x", spec.name: value}
    if spec.only_with is not None:
        data[spec.only_with] = spec.only_value
    layer = [inputs for inputs in LAYER_INPUTS.values() if spec.name == "mode" and inputs["mode"] == value]
    data.update(*layer)  # a layer mode comes with its image
    if isinstance(spec, Side) and spec.together is not None:
        size = next(size for size in SIZES if not accepted or size[spec.axis] == value)
        data[spec.together] = size[1 - spec.axis]
    return data


# An image field's string is an image beyond what a schema states (tests/unit/test_image_input.py, the corpus).
CASES = [
    (spec, value, ok)
    for spec in CONTRACT
    if not isinstance(spec, ImageData)
    for value, ok in probes(PROPERTIES[spec.name])
]


def case_id(spec: Field, value: Any, accepted: bool) -> str:
    shown = f"{len(value)}-chars" if isinstance(value, str) and len(value) > 12 else repr(value)
    return f"{spec.name}-{'accepted' if accepted else 'refused'}-{shown}"


# The schema's own verdict, by a JSON Schema validator (draft 2020-12, as OpenAPI 3.1 has it).
VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA)


@pytest.mark.parametrize(("spec", "value", "accepted"), CASES, ids=[case_id(*case) for case in CASES])
def test_schema_and_validation_agree(spec: Field, value: Any, accepted: bool) -> None:
    data = job(spec, value, accepted)
    assert VALIDATOR.is_valid(data) is accepted, "the schema's verdict"
    if accepted:
        parsed = getattr(validate(data), spec.name)
        assert parsed == value and type(parsed) is (int if isinstance(value, float) else type(value))
        return
    with pytest.raises(InputError) as caught:
        validate(data)
    # A pair off the workflow's sizes names the side that is off (check_size): the probed one, or its partner.
    assert (caught.value.code, caught.value.field) in {("invalid_input", spec.name), ("invalid_input", spec.together)}


def test_the_schema_states_every_declared_field_and_no_other() -> None:
    assert list(PROPERTIES) == list(FIELDS) == [f.name for f in dataclasses.fields(Request)]
    assert set(SCHEMA["required"]) <= set(FIELDS) and SCHEMA["additionalProperties"] is False
    assert {name for pair in SCHEMA["dependentRequired"].items() for name in (pair[0], *pair[1])} <= set(FIELDS)
    with pytest.raises(InputError) as caught:
        validate({"prompt": "x", "sampler": "euler"})
    assert caught.value.field == "sampler"


TEXT_INPUT = {
    "prompt": "x",
    "negative_prompt": "y",
    "seed": 1,
    "width": 1024,
    "height": 1024,
    "workflow": "alpha_txt2img",
    "trim": True,
    "trim_margin": 8,
    "format": "webp",
    "delivery": "base64",
}
LAYER_INPUTS = {
    "background": {"mode": "foreground", "background": BACKGROUND},
    "foreground": {"mode": "background", "foreground": FOREGROUND},
}


def full_input(name: str) -> dict[str, Any]:
    """Every field that can go with ``name``: a layer mode's take its image, and no named workflow."""
    if name not in ("mode", *LAYER_INPUTS):
        return dict(TEXT_INPUT)
    full = {key: value for key, value in TEXT_INPUT.items() if key not in ("workflow", "width", "height")}
    return {**full, **LAYER_INPUTS[name if name != "mode" else "background"]}


@pytest.mark.parametrize("name", FIELDS)
def test_required_fields_are_the_schemas(name: str) -> None:
    """A field is needed where the schema refuses the input without it: ``required``, ``dependentRequired``, a
    ``dependentSchemas`` that requires it, or a layer mode's image (``allOf``)."""
    full = full_input(name)
    assert name in full and validate(full) and VALIDATOR.is_valid(full)
    del full[name]
    needed_by = [other for other, rule in SCHEMA["dependentSchemas"].items() if name in rule.get("required", [])]
    if not VALIDATOR.is_valid(full):
        with pytest.raises(InputError) as caught:
            validate(full)
        assert caught.value.field in {name, *needed_by, *SCHEMA["dependentRequired"].get(name, [])}
    else:
        assert getattr(validate(full), name) == PROPERTIES[name].get("default")


def test_every_field_is_in_some_full_input() -> None:
    assert set(TEXT_INPUT) | {key for layer in LAYER_INPUTS.values() for key in layer} == set(FIELDS)


@pytest.mark.parametrize("trim", [False, None], ids=["trim-false", "trim-absent"])
def test_a_field_that_needs_a_true_boolean_is_refused_without_it(trim: bool | None) -> None:
    """``dependentSchemas``: trim_margin only with trim: true, refused (not ignored) otherwise, by its own name."""
    (spec,) = [s for s in CONTRACT if s.only_with == "trim"]
    needs = str(spec.only_with)
    assert SCHEMA["dependentSchemas"][spec.name] == {"required": [needs], "properties": {needs: {"const": True}}}
    data: dict[str, Any] = {"prompt": "x", spec.name: 0}
    if trim is not None:
        data[needs] = trim
    with pytest.raises(InputError) as caught:
        validate(data)
    assert caught.value.field == spec.name and f"applies only with '{needs}': true" in caught.value.message


def test_side_ranges_hold_every_size_the_schema_lists() -> None:
    sides = [spec for spec in CONTRACT if isinstance(spec, Side)]
    assert [side.name for side in sides] == ["width", "height"]
    assert all(side.low <= value <= side.high for side in sides for value in PROPERTIES[side.name]["enum"])


def test_the_visible_pattern_is_the_parses_rule_for_every_character() -> None:
    """The schema's pattern (a class of code point ranges) and the parse (``str.isspace`` and category Cf) agree on
    each character of the planes with invisible ones (the BMP, 1 and 14: the rest hold none), as the validator
    and Python's ``re`` read the pattern."""
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": visible_pattern()})
    compiled = re.compile(visible_pattern())
    planes = (0, 1, 14)
    assert {ord(char) >> 16 for char in visible_pattern()} <= set(planes), "the class names characters of these only"
    for code in (c for plane in planes for c in range(plane << 16, (plane + 1) << 16)):
        if 0xD800 <= code <= 0xDFFF:
            continue  # a lone surrogate is no text (the parse refuses it)
        char = chr(code)
        assert validator.is_valid(char) is _visible(char) is bool(compiled.search(char)), hex(code)


def test_sizes_that_differ_by_workflow_are_stated_per_workflow() -> None:
    """Where the workflows allow different sizes, the schema states each one's under the condition that picks it:
    a named workflow, a layer mode, else the production workflow."""
    table = SizeTable([(1024, 1024)], {"wide": [(1536, 640)]}, {"foreground": [(1024, 1024), (1152, 896)]})
    schema = input_schema(table, ["wide"])
    assert schema["properties"]["width"]["enum"] == [1024, 1152, 1536]
    validator = jsonschema_rs.Draft202012Validator(schema)
    image = {"mode": "foreground", "background": "x"}
    verdicts = {
        (1024, 1024, None): True,
        (1536, 640, None): False,
        (1536, 640, "wide"): True,
        (1024, 1024, "wide"): False,
        (1152, 896, "fg"): True,
        (1536, 640, "fg"): False,
        (1152, 896, None): False,
    }
    for (width, height, picks), valid in verdicts.items():
        data: dict[str, Any] = {"prompt": "x", "width": width, "height": height}
        data.update({"wide": {"workflow": "wide"}, "fg": image, None: {}}[picks])
        assert validator.is_valid(data) is valid, (width, height, picks)
    assert validator.is_valid({"prompt": "x", "workflow": "wide"}) and validator.is_valid({"prompt": "x", **image})
    assert not validator.is_valid({"prompt": "x", "workflow": "wide", **image}), "a named workflow is text's"
    assert len(schema["allOf"]) == 2 + 3 and "width" not in schema["dependentSchemas"], "one rule each, and the rest"
    same = input_schema(SizeTable([(1024, 1024)], {"a": [(1024, 1024)]}, {"background": [(1024, 1024)]}))
    pair = {"properties": {"width": {"const": 1024}, "height": {"const": 1024}}}
    assert same["dependentSchemas"]["width"] == {"oneOf": [pair]} and len(same["allOf"]) == 2, "one list for all"


def test_readme_documents_every_input_field_and_no_other() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("Job input (") : readme.index("Any other key is refused")]
    documented = {
        name
        for row in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", table, re.MULTILINE)
        for name in re.findall(r"`(\w+)`", row)
    }
    assert documented == set(FIELDS)
