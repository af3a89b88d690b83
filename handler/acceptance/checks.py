"""Every acceptance criterion, checked on one answer against the job that asked for it.

A success answer is: status success; the image delivered as the job asked (``inline``: ``url`` a data URI of the
format's MIME type and ``image_base64`` its payload; ``base64``: ``image_base64`` alone); the bytes, ``filename``,
``info.format`` and ``info.mime_type`` the format asked; RGBA (a background: opaque); an alpha channel neither
flat nor empty (by the worker's own rule: at most ``ALPHA_MAX_UNIFORM_ALPHA`` of the pixels fully opaque, or
fully transparent; a trim: visible pixels); the size asked for (a trim: the crop of the visible pixels' box);
``info.mode`` the mode asked; and in a layer mode ``layers.blended``, an opaque picture of the same size, format
and delivery. The alpha API sends files, not base64: its two base64 criteria do not apply (``ok`` None).
Every value of the answer is read at the type it should have (``values``): a wrong one fails its criterion.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from handler.acceptance import values
from handler.acceptance.clients import Answer
from handler.acceptance.pictures import (
    Picture,
    alpha_criterion,
    format_criterion,
    is_opaque,
    open_picture,
    rgba_criterion,
    size_criterion,
)
from handler.acceptance.prompts import Case
from handler.acceptance.results import Criterion, Result
from handler.settings import Settings

MAX_UNIFORM = Settings().max_uniform_alpha  # the worker's default rule


def check(case: Case, answer: Answer, api: str, max_uniform: float = MAX_UNIFORM) -> Result:
    """The criteria in CRITERIA's order; those after a failed one that they need fail too, saying why."""
    result = Result(case, answer, error=answer.error)
    body = values.obj(answer.output)
    info = values.obj(body.get("info"))
    result.test_mode = test_mode(info)
    if api == "alpha":
        result.criteria += alpha_delivery(answer)
        data = answer.files.get("image")
    else:
        delivery, data = delivered(body, case)
        result.criteria += [runpod_status(answer, body), *delivery]
    picture = open_picture(data) if data is not None else "no image to check"
    result.criteria += image_criteria(result, picture, body, info, max_uniform)
    result.criteria += [mode_criterion(case, info), layers_criterion(result, answer, body, api, picture)]
    return result


def test_mode(info: dict[str, Any]) -> dict[str, int | None] | None:
    """``info.test_mode``: a test-mode worker validates the size asked for, then runs smaller; it says which."""
    found = info.get("test_mode")
    if not isinstance(found, dict):
        return None
    return {name: values.integer(found.get(name)) for name in ("width", "height", "steps")}


def runpod_status(answer: Answer, body: dict[str, Any]) -> Criterion:
    success = answer.status == "COMPLETED" and body.get("status") == "success"
    detail = f"job {answer.status}, output status {values.shown(body.get('status'))}"
    return Criterion("status", success, detail + (f": {answer.error}" if answer.error else ""))


def alpha_delivery(answer: Answer) -> list[Criterion]:
    ok = answer.status == "HTTP 200" and "image" in answer.files
    return [
        Criterion("status", ok, f"{answer.status}; file fetched" if ok else answer.error or answer.status),
        Criterion("data_uri", None, "the alpha API answers a file URL"),
        Criterion("base64", None, "the alpha API sends the image as a file"),
    ]


def decoded(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def delivered(entry: dict[str, Any], case: Case) -> tuple[list[Criterion], bytes | None]:
    """An image in a RunPod output (the main one, or a layer), as the job's delivery says it comes: its
    ``data_uri`` and ``base64`` criteria, and its bytes."""
    prefix = f"data:image/{case.format};base64,"
    url, b64 = entry.get("url"), entry.get("image_base64")
    data = decoded(b64)
    if case.delivery == "base64":
        alone = url is None
        why = "no url, as delivery base64 asks" if alone else f"url is there ({values.shown(url, 40)}), not asked"
        return [
            Criterion("data_uri", alone, why),
            Criterion("base64", data is not None, "image_base64 is base64" if data else "image_base64 is not base64"),
        ], data
    is_uri = isinstance(url, str) and url.startswith(prefix)
    same = is_uri and isinstance(b64, str) and url == prefix + b64 and data is not None
    return [
        Criterion(
            "data_uri", is_uri, f"url is a {prefix[:-1]} URI" if is_uri else f"url starts {values.shown(url, 40)!r}"
        ),
        Criterion("base64", same, "image_base64 is the data URI's payload" if same else "image_base64 differs"),
    ], data


def image_criteria(
    result: Result, picture: Picture | str, body: dict[str, Any], info: dict[str, Any], max_uniform: float
) -> list[Criterion]:
    if isinstance(picture, str):
        return [Criterion("format", False, picture)] + [
            Criterion(name, False, "no image") for name in ("rgba", "alpha", "size")
        ]
    result.image, result.image_format = picture.data, picture.format
    return [
        format_criterion(picture, result.case, body.get("filename"), info),
        rgba_criterion(picture, result.case, info),
        alpha_criterion(result, picture, max_uniform),
        size_criterion(result, picture, info),
    ]


def mode_criterion(case: Case, info: dict[str, Any]) -> Criterion:
    got = info.get("mode")
    ok = got == case.mode
    return Criterion("mode", ok, f"mode {case.mode}" if ok else f"asked {case.mode}; info.mode is {values.shown(got)}")


def layers_criterion(result: Result, answer: Answer, body: dict[str, Any], api: str, main: Picture | str) -> Criterion:
    """Mode text returns no layers; a layer mode ``layers.blended``: opaque, the main image's size, in the
    job's format and delivery."""
    case, layers = result.case, body.get("layers")
    if case.mode == "text":
        if layers is None:
            return Criterion("layers", None, "mode text returns no layers")
        return Criterion("layers", False, f"a text job answered layers: {values.shown(layers)}")
    entry = values.obj(values.obj(layers).get("blended"))
    if not entry:
        return Criterion("layers", False, f"no layers.blended (layers is {values.shown(layers)})")
    problems = []
    if api == "alpha":
        data = answer.files.get("blended")
    else:
        delivery, data = delivered(entry, case)
        problems += [c.detail for c in delivery if c.ok is False]
    picture = open_picture(data) if data is not None else "no image"
    filename = entry.get("filename")
    if not (isinstance(filename, str) and filename.endswith(f"_blended.{case.format}")):
        problems.append(f"filename is {values.shown(filename)}")
    if isinstance(picture, str):
        return Criterion("layers", False, "; ".join(["layers.blended: " + picture, *problems]))
    result.blended, result.blended_format = picture.data, picture.format
    if picture.format != case.format:
        problems.append(f"it is {picture.format}, asked {case.format}")
    if not is_opaque(picture):
        problems.append(f"{picture.mode}, not opaque")
    if isinstance(main, Picture) and picture.image.size != main.image.size:
        problems.append(f"{picture.image.size} is not the image's {main.image.size}")
    width, height = picture.image.size
    detail = "; ".join(problems) or f"{picture.format} {width}x{height}, opaque"
    return Criterion("layers", not problems, f"layers.blended: {detail}")
