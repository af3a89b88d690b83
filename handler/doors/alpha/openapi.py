"""The OpenAPI document of the local alpha API, built from the same constants the code uses (the input
schema, the file-name pattern, the error classes' codes and statuses), so it cannot drift by hand."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from handler import __version__
from handler.asset import MIME_TYPES
from handler.doors.alpha.store import NAME
from handler.errors import statuses
from handler.png import AlphaStats
from handler.request import FORMATS, MODES, SizeTable, input_schema

PREFIX = "/alpha/v1"
FILENAME_LINK = "$response.body#/filename"
NOT_HERE = ("delivery",)  # the input fields this door refuses: it answers with a file URL


def error_codes() -> list[str]:
    return list(statuses())


def _json(description: str, ref: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, "Error")


def _codes_with(status: int) -> str:
    return ", ".join(f"`{code}`" for code, code_status in statuses().items() if code_status == status)


def _refusals() -> dict[str, Any]:
    """What any route may answer before it does any work."""
    return {
        "400": _error("The HTTP request is malformed, or carries a header that may come once twice (`bad_request`)."),
        "401": _error("A token is configured and the request did not carry it (`unauthorized`)."),
        "403": _error(f"A host this server does not answer to, or another origin ({_codes_with(403)})."),
    }


def _txt2img(schema: dict[str, Any]) -> dict[str, Any]:
    links = {name: {"operationId": name, "parameters": {"filename": FILENAME_LINK}} for name in ("getFile", "headFile")}
    return {
        "summary": "Generate a transparent image (PNG or lossless WebP) from a prompt, or a layer for a given one",
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "operationId": "txt2img",
        "responses": {
            "200": {**_json("The image was written; fetch it from `url`.", "Txt2ImgResult"), "links": links},
            "400": _error(
                "Invalid input (`invalid_input`; `field` names the field), or a malformed HTTP request (`bad_request`)."
            ),
            "413": _error(f"The body is larger than ALPHA_SERVE_MAX_BODY_BYTES ({_codes_with(413)})."),
            "415": _error(f"The body is not sent as `application/json` ({_codes_with(415)})."),
            "500": _error(f"The job failed ({_codes_with(500)})."),
            "501": _error(f"This worker does not serve the request's layer `mode` ({_codes_with(501)})."),
            "503": _error(f"ComfyUI is not available ({_codes_with(503)})."),
            "504": _error(f"The job deadline passed ({_codes_with(504)})."),
            **{status: answer for status, answer in _refusals().items() if status != "400"},
        },
    }


def _file_operations() -> dict[str, Any]:
    """GET and HEAD of a generated file: the same parameter and responses."""
    parameter = {
        "name": "filename",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{NAME.pattern}$"},
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    image = {
        "description": "The image (RGBA), immutable: PNG or WebP, as the name's extension says.",
        "content": {"image/png": binary, "image/webp": binary},
    }
    responses = {"200": image, "404": _error("Not a file this service wrote (`not_found`)."), **_refusals()}
    return {
        "get": {
            "summary": "Fetch a generated image",
            "operationId": "getFile",
            "parameters": [parameter],
            "responses": responses,
        },
        "head": {
            "summary": "Headers of a generated image",
            "operationId": "headFile",
            "parameters": [parameter],
            "responses": responses,
        },
    }


def _health() -> dict[str, Any]:
    return {
        "operationId": "health",
        "summary": "Readiness: ComfyUI answers, the workflow is valid, its models are present",
        "responses": {
            "200": _json("Ready.", "Health"),
            "503": _json("Not ready; `problems` says why.", "Health"),
            **_refusals(),
        },
    }


def _openapi() -> dict[str, Any]:
    document = {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
    return {"operationId": "openapi", "summary": "This document", "responses": {"200": document, **_refusals()}}


def _box(description: str) -> dict[str, Any]:
    integer = {"type": "integer", "minimum": 0}
    return {"type": "array", "items": integer, "minItems": 4, "maxItems": 4, "description": description}


def _info() -> dict[str, Any]:
    """What a result reports about itself (``Generator``'s ``info``): the keys every result has, typed where a
    client reads them."""
    alpha: dict[str, Any] = {field.name: {"type": "integer"} for field in dataclasses.fields(AlphaStats)}
    alpha.update(alpha_mean={"type": "number"}, transparent={"type": "number"}, opaque={"type": "number"})
    alpha["bbox"] = {
        **_box("The visible pixels (alpha > 0) on the generated canvas: left, top, right, bottom (exclusive)."),
        "type": ["array", "null"],
    }
    attempt = {
        "type": "object",
        "required": ["seed", "rejected"],
        "properties": {"seed": {"type": "integer"}, "rejected": {"type": ["string", "null"]}},
    }
    properties = {
        "seed": {"type": "integer"},
        "width": {"type": "integer", "description": "The generated canvas."},
        "height": {"type": "integer"},
        "alpha": {
            "type": "object",
            "required": list(alpha),
            "properties": alpha,
            "description": "The returned image's alpha figures (after a trim: the cut's), `bbox` the canvas's.",
        },
        "mode": {"enum": list(MODES), "description": "The request's mode."},
        "format": {"enum": list(FORMATS)},
        "mime_type": {"enum": list(MIME_TYPES.values())},
        "crop": _box("With `trim`: the box cut from the canvas, margin included."),
        "timings_ms": {"type": "object", "additionalProperties": {"type": "integer"}},
        "attempts": {
            "type": "array",
            "items": attempt,
            "minItems": 1,
            "description": "Every seed tried; `rejected` says why the transparency check refused one.",
        },
    }
    required = [*("seed", "width", "height", "workflow", "mode", "prompt_id", "alpha", "format", "mime_type")]
    return {"type": "object", "required": [*required, "timings_ms", "versions", "attempts"], "properties": properties}


def _schemas() -> dict[str, Any]:
    nullable = {"type": ["string", "null"]}
    return {
        "Txt2ImgResult": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "filename", "info"],
            "properties": {
                "url": {"type": "string", "pattern": f"^{PREFIX}/file/{NAME.pattern}$"},
                "filename": {"type": "string", "pattern": f"^{NAME.pattern}$"},
                "info": _info(),
                "layers": {
                    "type": "object",
                    "description": "Layer modes: the other images, in the request's format (`blended`: the picture "
                    "with both layers).",
                    "additionalProperties": False,
                    "properties": {
                        "blended": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["url", "filename"],
                            "properties": {
                                "url": {"type": "string", "pattern": f"^{PREFIX}/file/{NAME.pattern}$"},
                                "filename": {"type": "string", "pattern": f"^{NAME.pattern}$"},
                            },
                        }
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["status", "error", "code", "message", "field"],
            "properties": {
                "status": {"const": "error"},
                "error": {"type": "string", "description": "`<code>: <message>`"},
                "code": {"enum": error_codes()},
                "message": {"type": "string"},
                "field": {**nullable, "description": "The input field at fault, if any."},
                "node_id": nullable,
                "node_type": nullable,
                "exception_type": nullable,
            },
        },
        "Health": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "problems", "checks"],
            "properties": {
                "status": {"enum": ["ready", "not_ready"]},
                "problems": {"type": "array", "items": {"type": "string"}},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    }


def document(
    *, token_required: bool, sizes: Sequence[tuple[int, int]] | SizeTable, workflows: Sequence[str] = ()
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "LayerDiffuse Alpha API (local)",
            "version": __version__,
            "description": "Debug door of the worker: the same core and input as the RunPod handler.",
        },
        "paths": {
            f"{PREFIX}/txt2img": {"post": _txt2img(input_schema(sizes, workflows, without=NOT_HERE))},
            f"{PREFIX}/file/{{filename}}": _file_operations(),
            f"{PREFIX}/health": {"get": _health()},
            f"{PREFIX}/openapi.json": {"get": _openapi()},
        },
        "components": {"schemas": _schemas()},
    }
    if token_required:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    return doc
