"""The input contract (handler/request.py ``CONTRACT``): the published schema is pinned (the OpenAPI document
serves it), and it agrees with ``Request.parse`` field by field."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from handler.errors import InputError
from handler.fields import Field, ImageData, Side
from handler.generate import Generator
from handler.image_input import MAX_BASE64_CHARS
from handler.paths import REPO
from handler.prompt_syntax import RULES
from handler.request import CONTRACT, FIELDS, Request, input_schema
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
            "description": "What to draw; must not be blank. " + RULES,
        },
        "negative_prompt": {
            "type": "string",
            "maxLength": 2000,
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
        "workflow": {
            "type": "string",
            "enum": ["alpha_txt2img", "alpha_txt2img_conv"],
            "description": "A named workflow; omitted means the production one.",
        },
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
        "background": {"required": ["mode"], "properties": {"mode": {"const": "foreground"}}},
        "foreground": {"required": ["mode"], "properties": {"mode": {"const": "background"}}},
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
    del pinned["properties"]["workflow"]
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
KEYWORDS = {"type", "minimum", "maximum", "minLength", "maxLength", "enum", "default", "description"}
WRONG_TYPES: dict[str, list[Any]] = {
    "string": [None, True, 0, 1.5, [], {}],
    "integer": [None, True, 1.5, "7", [], {}],
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
    if "minimum" in fragment:
        low, high = fragment["minimum"], fragment["maximum"]
        cases += [(low, True), (high, True), (low - 1, False), (high + 1, False)]
    if "enum" in fragment:
        values = fragment["enum"]
        cases += [(value, True) for value in values]
        if fragment["type"] == "integer":
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


@pytest.mark.parametrize(("spec", "value", "accepted"), CASES, ids=[case_id(*case) for case in CASES])
def test_schema_and_validation_agree(spec: Field, value: Any, accepted: bool) -> None:
    data = job(spec, value, accepted)
    if accepted:
        assert getattr(validate(data), spec.name) == value
        return
    with pytest.raises(InputError) as caught:
        validate(data)
    # A pair outside the workflow's sizes is named by 'width' (check_size), whichever side is off.
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
    full = full_input(name)
    assert name in full and validate(full)
    del full[name]
    dependent = SCHEMA["dependentRequired"].get(name, [])
    needed_by = [other for other, rule in SCHEMA["dependentSchemas"].items() if name in rule["required"]]
    by_mode = [
        image
        for rule in SCHEMA["allOf"]
        if full.get("mode") == rule["if"]["properties"]["mode"]["const"]
        for image in rule["then"]["required"]
    ]
    if name in SCHEMA["required"] or dependent or needed_by or name in by_mode:
        with pytest.raises(InputError) as caught:
            validate(full)
        assert caught.value.field in {name, *needed_by}
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


@pytest.mark.parametrize("spec", [s for s in CONTRACT if PROPERTIES[s.name]["type"] == "integer"], ids=lambda s: s.name)
def test_integral_floats_are_refused_though_json_schema_counts_them_as_integers(spec: Field) -> None:
    """The one place the parse is stricter than the schema's types: JSON Schema's "integer" takes 1024.0, the
    parse does not (README: floats refused)."""
    with pytest.raises(InputError) as caught:
        validate({**job(spec, 1024, True), spec.name: 1024.0})
    assert caught.value.field == spec.name


def test_readme_documents_every_input_field_and_no_other() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("Job input (") : readme.index("Any other key is refused")]
    documented = {
        name
        for row in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", table, re.MULTILINE)
        for name in re.findall(r"`(\w+)`", row)
    }
    assert documented == set(FIELDS)
