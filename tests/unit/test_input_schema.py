"""The published input schema (handler/request.py ``input_schema``), pinned: the OpenAPI document serves it."""

from __future__ import annotations

import json
from typing import Any

from handler.request import input_schema
from handler.settings import Settings
from handler.workflow.graph import Workflow

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
            "description": "What to draw; must not be blank.",
        },
        "negative_prompt": {
            "type": "string",
            "maxLength": 2000,
            "description": "What to avoid; omitted means the workflow's default.",
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
    },
    "dependentRequired": {"width": ["height"], "height": ["width"]},
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


def test_size_enums_are_sorted_and_unique_per_axis() -> None:
    schema = input_schema([(640, 1536), (1024, 1024), (1024, 640)], ("b", "a"))
    width, height = schema["properties"]["width"], schema["properties"]["height"]
    assert (width["enum"], height["enum"]) == ([640, 1024], [640, 1024, 1536])
    assert width["description"] == "Given together with `height`, as one of: 640x1536, 1024x1024, 1024x640."
    assert schema["properties"]["workflow"]["enum"] == ["b", "a"], "the allowlist's order"
