"""Job input: one contract for every door (RunPod job ``input``, the local alpha API body).

``CONTRACT`` declares each field once, in the order it is checked. Each field both validates its value
(``Request.parse``) and states itself in JSON Schema (``input_schema``); the object-level rules (the allowed
keys, ``required``, ``dependentRequired``, ``dependentSchemas``, and ``allOf``: a layer mode requires its image)
are derived from the same declaration. Rules a schema cannot state (a non-blank prompt, no NUL, an allowed
width x height pair, an input image's content) are in the descriptions and answered with 400. The kinds of field
are in ``handler.fields``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handler import image_input, prompt_syntax
from handler.errors import InputError
from handler.fields import (
    Boolean,
    Choice,
    Field,
    ImageData,
    Integer,
    Side,
    Sizes,
    Text,
    WorkflowName,
    kind,
    size_list,
)

MAX_SEED = 2**53 - 1  # the largest integer every JSON client represents exactly
MIN_SIDE, MAX_SIDE = 64, 8192  # a sanity range; the workflow's sizes decide (check_size)
MAX_TRIM_MARGIN = 512
FORMATS = ("png", "webp")
DELIVERIES = ("inline", "base64", "bucket")
# A layer mode -> the input image it takes (a field, and the workflow marker ``alpha:<image>``).
MODE_IMAGES: dict[str, str] = {"foreground": "background", "background": "foreground"}
MODES = ("text", *MODE_IMAGES)


def check_size(width: int, height: int, sizes: Sizes) -> None:
    """The workflow declares its sizes (``alpha_sizes``); anything else is the client's error."""
    if (width, height) not in sizes:
        raise InputError(
            f"size {width}x{height} ('width' x 'height') is not allowed; allowed sizes: {size_list(sizes)}",
            field="width",
        )


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
        name="mode",
        values=MODES,
        default="text",
        description="`text`: a transparent image from the prompt. `foreground`: a transparent foreground that fits "
        "the given `background`. `background`: a background that fits the given transparent `foreground`. The "
        "layer modes also return the blended picture in `layers.blended`.",
    ),
    ImageData(
        name="background",
        only_with="mode",
        only_value="foreground",
        description="With `mode: foreground` (and only then): the background, as base64 or a data URI of a PNG, "
        'JPEG or WebP; fitted to the nearest allowed size (README, "Layer modes").',
    ),
    ImageData(
        name="foreground",
        only_with="mode",
        only_value="background",
        need_alpha=True,
        description="With `mode: background` (and only then): the transparent subject, as base64 or a data URI of "
        "a PNG or WebP with an alpha channel that is not flat; fitted like `background`.",
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
        raise InputError(f"input must be a JSON object, got {kind(data)}")
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
    """A field that applies only with another field's value was given without it: refused, not ignored (and
    before its value is read: an image is not decoded only to be refused)."""
    if spec.only_with is not None and spec.name in data and values[spec.only_with] != spec.only_value:
        raise spec.refuse(f"applies only with {spec.condition}")


def _check_mode_image(values: Mapping[str, Any]) -> None:
    """A layer mode needs its image."""
    image = MODE_IMAGES.get(values["mode"])
    if image is not None and values[image] is None:
        raise InputError(f"'{image}' is required with 'mode': \"{values['mode']}\"", field=image)


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
    mode: str = "text"
    background: image_input.InputImage | None = None
    foreground: image_input.InputImage | None = None
    delivery: str | None = None  # the RunPod door's; None: inline

    @property
    def image(self) -> image_input.InputImage | None:
        """The layer mode's input image (``background`` or ``foreground``), or None in mode ``text``."""
        name = MODE_IMAGES.get(self.mode)
        return None if name is None else getattr(self, name)

    @classmethod
    def parse(cls, data: Any) -> Request:
        """Validate raw job input; raises InputError naming the first bad field."""
        data = _check_object(data)
        values: dict[str, Any] = {}
        for spec in CONTRACT:
            _check_only_with(spec, data, values)
            values[spec.name] = spec.parse(data)
            if spec.together in values:  # the pair's second field: both are read now
                _check_together(spec.together, spec.name, values)
        _check_mode_image(values)
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
            spec.name: {"required": [spec.only_with], "properties": {spec.only_with: {"const": spec.only_value}}}
            for spec in specs
            if spec.only_with
        },
        "allOf": [
            {"if": {"required": ["mode"], "properties": {"mode": {"const": mode}}}, "then": {"required": [image]}}
            for mode, image in MODE_IMAGES.items()
        ],
    }
