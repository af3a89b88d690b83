"""Job input: one contract for every door (RunPod job ``input``, the local alpha API body).

``CONTRACT`` declares each field once, in the order it is checked. Each field both validates its value
(``Request.parse``) and states itself in JSON Schema (``input_schema``); the object-level rules (the allowed
keys, ``required``, ``dependentRequired``, ``dependentSchemas``, and ``allOf``: a layer mode requires its image)
are derived from the same declaration, and so are the allowed width x height pairs (``SizeTable``). Integers are
JSON Schema's: an integral number is one (``7.0``). What a schema cannot state (ComfyUI's prompt weights and depth
of parentheses, an input image's content) is in the descriptions and answered with 400;
tests/unit/test_schema_agreement.py holds the doors to the schema on everything else. The kinds of field are in
``handler.fields``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    """The workflow declares its sizes (``alpha_sizes``); anything else is the client's error, named by the side
    that is off: ``width`` when no allowed size has it, else ``height``."""
    if (width, height) in sizes:
        return
    heights = [h for w, h in sizes if w == width]
    if not heights:
        side, why = "width", f"no allowed size is {width} wide"
    else:
        side, why = "height", f"with 'width' {width}, 'height' must be {' or '.join(map(str, heights))}"
    raise InputError(
        f"size {width}x{height} ('width' x 'height') is not allowed: {why}; allowed sizes: {size_list(sizes)}",
        field=side,
    )


@dataclass(frozen=True)
class SizeTable:
    """The sizes a job may ask for, by what picks its workflow: the production workflow's (``default``), a named
    workflow's (``workflows``, by name), a layer mode's (``modes``, by mode)."""

    default: Sizes
    workflows: Mapping[str, Sizes] = field(default_factory=dict)
    modes: Mapping[str, Sizes] = field(default_factory=dict)

    @property
    def union(self) -> list[tuple[int, int]]:
        """Every size some job may ask for, in the order first declared."""
        every = [*self.default, *(s for sizes in (*self.workflows.values(), *self.modes.values()) for s in sizes)]
        return list(dict.fromkeys(every))

    def rules(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """JSON Schema's statement of the width x height pairs, as a ``dependentSchemas`` entry where every workflow
        has the same list, else as ``allOf`` entries, each workflow's under the condition that picks it."""
        chosen = {("workflow", name): sizes for name, sizes in self.workflows.items()}
        chosen.update({("mode", mode): sizes for mode, sizes in self.modes.items()})
        if all(set(sizes) == set(self.default) for sizes in chosen.values()):
            return _pairs(self.default), []
        rules = [{"if": _given(*key), "then": {"dependentSchemas": _pairs(sizes)}} for key, sizes in chosen.items()]
        otherwise = {"if": {"not": {"anyOf": [_given(*key) for key in chosen]}}}
        return {}, [*rules, {**otherwise, "then": {"dependentSchemas": _pairs(self.default)}}]


def _given(name: str, value: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"const": value}}}


def _pairs(sizes: Sizes) -> dict[str, Any]:
    """Given a width (and so a height: ``dependentRequired``), the pair is one of ``sizes``. ``oneOf`` rather than
    ``anyOf`` (the pairs differ, so at most one matches): validators and generators expand ``anyOf`` across the
    rest of the schema, which made schemathesis ~50x slower to read it."""
    pairs = dict.fromkeys((int(w), int(h)) for w, h in sizes)
    return {"width": {"oneOf": [{"properties": {"width": {"const": w}, "height": {"const": h}}} for w, h in pairs]}}


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
    WorkflowName(
        name="workflow",
        only_with="mode",
        only_value="text",
        description="A named workflow; omitted means the production one. Only with `mode: text` (the layer modes "
        "have theirs).",
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
    trim: bool = False
    trim_margin: int = 0
    format: str = "png"
    mode: str = "text"
    workflow: str | None = None
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


def input_schema(
    sizes: Sizes | SizeTable, workflows: Sequence[str] = (), *, without: Sequence[str] = ()
) -> dict[str, Any]:
    """JSON Schema of the job input, for the OpenAPI document, from ``CONTRACT``. ``sizes``: one list for every
    workflow, or each workflow's (``SizeTable``). ``without`` names fields a door does not take (the alpha API
    refuses ``delivery``)."""
    table = sizes if isinstance(sizes, SizeTable) else SizeTable(sizes)
    specs = [spec for spec in CONTRACT if spec.name not in without]
    properties = {
        spec.name: fragment for spec in specs if (fragment := spec.schema(table.union, workflows)) is not None
    }
    offered = [spec for spec in specs if spec.name in properties]
    pairs, pairs_by_workflow = table.rules()
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [spec.name for spec in offered if spec.required],
        "properties": properties,
        "dependentRequired": {spec.name: [spec.together] for spec in offered if spec.together},
        "dependentSchemas": {**{spec.name: _only_with(spec) for spec in offered if spec.only_with}, **pairs},
        "allOf": [
            *({"if": _given("mode", mode), "then": {"required": [image]}} for mode, image in MODE_IMAGES.items()),
            *pairs_by_workflow,
        ],
    }


def _only_with(spec: Field) -> dict[str, Any]:
    """``spec`` is given only where its ``only_with`` field has ``only_value``: given with it, unless that is the
    field's default (``workflow`` needs ``mode`` text, which an absent ``mode`` is)."""
    other = next(candidate for candidate in CONTRACT if candidate.name == spec.only_with)
    required = [] if other.default == spec.only_value else [other.name]
    return {**({"required": required} if required else {}), "properties": {other.name: {"const": spec.only_value}}}
