"""Input cases shared by the tests of every door (Request.parse, the RunPod handler, RunPod's local API and the
local alpha API): ``CORPUS`` is the one table of bad job inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from handler.image_input import MAX_BASE64_CHARS, MAX_IMAGE_BYTES
from tests.layer_images import BACKGROUND, FOREGROUND, background, encoded, png_header, raw, saved

SEED_RANGE = "must be from 0 to 9007199254740991"
NOT_OBJECT = "input must be a JSON object"
LAYER_MODE = {mode: f'"{mode}"' for mode in ("text", "foreground", "background")}  # as the message quotes it
WIDE = encoded(background((256, 128)))


@dataclass(frozen=True)
class BadInput:
    """A job input (RunPod's ``input``; the alpha API's whole body) that every door refuses as ``invalid_input``
    naming ``field``, with ``words`` in the message, before anything reaches ComfyUI. ``runpod_status`` is what
    RunPod's local API (``--rp_serve_api``) answers on ``/runsync``: 200 with a FAILED job, or 422 when its own
    request model refuses an ``input`` that is not an object (the hosted queue may pass it on; the handler
    refuses it too)."""

    id: str
    job_input: Any
    field: str | None
    words: str
    runpod_status: int = 200


def _bad(id: str, job_input: Any, field: str | None, words: str, runpod_status: int = 200) -> BadInput:
    return BadInput(id, job_input, field, words, runpod_status)


CORPUS: list[BadInput] = [
    # missing, empty, blank
    _bad("empty-object", {}, "prompt", "'prompt' is required"),
    _bad("only-negative", {"negative_prompt": "blurry"}, "prompt", "'prompt' is required"),
    _bad("empty-prompt", {"prompt": ""}, "prompt", "'prompt' must not be empty"),
    _bad("spaces", {"prompt": "     "}, "prompt", "'prompt' must not be empty"),
    _bad("tabs-newlines", {"prompt": "\t\n\r\v\f "}, "prompt", "'prompt' must not be empty"),
    _bad("unicode-spaces", {"prompt": "\u3000\u00a0\u2003\u2028"}, "prompt", "'prompt' must not be empty"),
    _bad("invisible-only", {"prompt": "\u200b\u2060\ufeff"}, "prompt", "'prompt' has no visible characters"),
    _bad("invisible-and-space", {"prompt": "\u200b\u200d\u2060 \ufeff"}, "prompt", "has no visible characters"),
    # wrong types and nulls
    _bad("prompt-int", {"prompt": 42}, "prompt", "'prompt' must be a string, got an integer"),
    _bad("prompt-float", {"prompt": 4.2}, "prompt", "'prompt' must be a string, got a number"),
    _bad("prompt-bool", {"prompt": True}, "prompt", "'prompt' must be a string, got a boolean"),
    _bad("prompt-null", {"prompt": None}, "prompt", "'prompt' must be a string, got null"),
    _bad("prompt-array", {"prompt": ["a cat"]}, "prompt", "'prompt' must be a string, got an array"),
    _bad("prompt-object", {"prompt": {"text": "a cat"}}, "prompt", "'prompt' must be a string, got an object"),
    _bad(
        "negative-null",
        {"prompt": "x", "negative_prompt": None},
        "negative_prompt",
        "'negative_prompt' must be a string, got null; omit the field to use the default",
    ),
    _bad(
        "negative-int",
        {"prompt": "x", "negative_prompt": 0},
        "negative_prompt",
        "'negative_prompt' must be a string, got an integer",
    ),
    _bad(
        "negative-array",
        {"prompt": "x", "negative_prompt": ["blurry"]},
        "negative_prompt",
        "'negative_prompt' must be a string, got an array",
    ),
    # huge strings: the limit is 2,000 characters (code points), measured before trimming
    _bad("prompt-2001", {"prompt": "a" * 2001}, "prompt", "'prompt' is 2001 characters long; the limit is 2000"),
    _bad("prompt-60000", {"prompt": "a" * 60_000}, "prompt", "'prompt' is 60000 characters long"),
    _bad(
        "negative-2001",
        {"prompt": "x", "negative_prompt": "n" * 2001},
        "negative_prompt",
        "'negative_prompt' is 2001 characters long",
    ),
    _bad("combining-2001", {"prompt": "e" + "\u0301" * 2000}, "prompt", "'prompt' is 2001 characters long"),
    _bad("astral-2001", {"prompt": "\U0001f34e" * 2001}, "prompt", "'prompt' is 2001 characters long"),
    _bad("padded-2001", {"prompt": " " * 1000 + "a" + " " * 1000}, "prompt", "'prompt' is 2001 characters long"),
    # Unicode that is not text: lone surrogates (sent as JSON \ud800 escapes) and NUL
    _bad("lone-high-surrogate", {"prompt": "\ud800"}, "prompt", "'prompt' is not valid Unicode text (lone surrogate)"),
    _bad("lone-low-surrogate", {"prompt": "a glass \udfff apple"}, "prompt", "(lone surrogate)"),
    _bad("negative-surrogate", {"prompt": "x", "negative_prompt": "\ud83d"}, "negative_prompt", "(lone surrogate)"),
    _bad("nul", {"prompt": "a\x00b"}, "prompt", "'prompt' must not contain NUL characters"),
    _bad(
        "negative-nul",
        {"prompt": "x", "negative_prompt": "\x00"},
        "negative_prompt",
        "'negative_prompt' must not contain NUL characters",
    ),
    # ComfyUI's prompt syntax: weights that are not finite or past 10, nesting past 32 levels (each level x1.1;
    # about 1,000 levels overflow its parser's recursion), and embedding: (logged verbatim by ComfyUI)
    _bad("weight-nan", {"prompt": "(apple:nan)"}, "prompt", "'prompt' has a prompt weight of nan"),
    _bad("weight-inf", {"prompt": "(apple:inf)"}, "prompt", "'prompt' has a prompt weight of inf"),
    _bad("weight-1e308", {"prompt": "(apple:1e308)"}, "prompt", "'prompt' has a prompt weight of 1e+308"),
    _bad("weight-minus-1e308", {"prompt": "x", "negative_prompt": "(apple:-1e308)"}, "negative_prompt", "of -1e+308"),
    _bad("weight-10.5", {"prompt": "(apple:10.5)"}, "prompt", "weights must be numbers from -10 to 10"),
    _bad("nesting-25", {"prompt": "(" * 25 + "apple" + ")" * 25}, "prompt", "'prompt' has a prompt weight of 10.8"),
    _bad("nesting-900", {"prompt": "(" * 900 + "apple" + ")" * 900}, "prompt", "900 levels deep; the limit is 32"),
    _bad("nesting-997", {"prompt": "(" * 997 + "a" + ")" * 997}, "prompt", "997 levels deep"),
    _bad("embedding", {"prompt": "a cat embedding:zz"}, "prompt", "'prompt' uses 'embedding:'"),
    _bad(
        "embedding-forged-log-line",
        {"prompt": "a cat embedding:zz\n2026-12-01 23:59:59,999 ERROR handler.supervisor [job -] ComfyUI exited"},
        "prompt",
        "uses 'embedding:', ComfyUI's textual-inversion syntax",
    ),
    _bad(
        "embedding-negative",
        {"prompt": "x", "negative_prompt": "embedding:my private negative"},
        "negative_prompt",
        "'negative_prompt' uses 'embedding:'",
    ),
    # seeds
    _bad("seed-string", {"prompt": "x", "seed": "7"}, "seed", "'seed' must be an integer, got a string"),
    _bad("seed-bool", {"prompt": "x", "seed": True}, "seed", "'seed' must be an integer, got a boolean"),
    _bad("seed-null", {"prompt": "x", "seed": None}, "seed", "'seed' must be an integer, got null"),
    # An integral number is an integer (JSON Schema's rule): 2.0**53 is one, past the range.
    _bad("seed-integral-float-2^53", {"prompt": "x", "seed": 2.0**53}, "seed", f"{SEED_RANGE}, got 9007199254740992.0"),
    _bad("seed-float", {"prompt": "x", "seed": 7.5}, "seed", "'seed' must be an integer, got 7.5"),
    _bad("seed-tiny-fraction", {"prompt": "x", "seed": 7.000001}, "seed", "'seed' must be an integer, got 7.000001"),
    _bad("seed-nan", {"prompt": "x", "seed": float("nan")}, "seed", "'seed' must be an integer, got nan"),
    _bad("seed-infinity", {"prompt": "x", "seed": float("inf")}, "seed", "'seed' must be an integer, got inf"),
    _bad("seed-1e300", {"prompt": "x", "seed": 1e300}, "seed", f"{SEED_RANGE}, got 1e+300"),
    _bad("seed-array", {"prompt": "x", "seed": [7]}, "seed", "'seed' must be an integer, got an array"),
    _bad("seed-negative", {"prompt": "x", "seed": -1}, "seed", f"'seed' {SEED_RANGE}, got -1"),
    _bad("seed-int64-min", {"prompt": "x", "seed": -(2**63)}, "seed", f"{SEED_RANGE}, got -9223372036854775808"),
    _bad("seed-2^53", {"prompt": "x", "seed": 2**53}, "seed", f"{SEED_RANGE}, got 9007199254740992"),
    _bad("seed-2^64", {"prompt": "x", "seed": 2**64}, "seed", f"{SEED_RANGE}, got 18446744073709551616"),
    _bad("seed-googol", {"prompt": "x", "seed": 10**100}, "seed", f"{SEED_RANGE}, got 1{'0' * 100}"),
    # sizes
    _bad(
        "size-undeclared",
        {"prompt": "x", "width": 1000, "height": 1000},
        "width",
        "size 1000x1000 ('width' x 'height') is not allowed",
    ),
    # A pair off the list names the side that is off: 'width' when no size is that wide, else 'height'.
    _bad("size-not-a-bucket", {"prompt": "x", "width": 1024, "height": 768}, "height", "'height' must be 1024;"),
    _bad("size-swapped-height", {"prompt": "x", "width": 1152, "height": 1152}, "height", "'height' must be 896;"),
    _bad("size-no-such-width", {"prompt": "x", "width": 960, "height": 1024}, "width", "no allowed size is 960 wide"),
    _bad("size-off-by-one", {"prompt": "x", "width": 1023, "height": 1024}, "width", "size 1023x1024"),
    _bad("width-only", {"prompt": "x", "width": 1024}, "height", "'height' is missing"),
    _bad("height-only", {"prompt": "x", "height": 1024}, "width", "'width' is missing"),
    _bad("size-zero", {"prompt": "x", "width": 0, "height": 0}, "width", "'width' must be from 64 to 8192, got 0"),
    _bad("size-negative", {"prompt": "x", "width": -1024, "height": -1024}, "width", "got -1024"),
    _bad("size-huge", {"prompt": "x", "width": 100_000, "height": 100_000}, "width", "got 100000"),
    _bad("height-huge", {"prompt": "x", "width": 1024, "height": 2**40}, "height", "'height' must be from 64"),
    _bad(
        "width-8256",
        {"prompt": "x", "width": 8256, "height": 1024},
        "width",
        "'width' must be from 64 to 8192, got 8256",
    ),
    _bad(
        "size-strings",
        {"prompt": "x", "width": "1024", "height": "1024"},
        "width",
        "'width' must be an integer, got a string",
    ),
    _bad(
        "size-floats",
        {"prompt": "x", "width": 1024.5, "height": 1024.5},
        "width",
        "'width' must be an integer, got 1024.5",
    ),
    _bad(
        "height-float",
        {"prompt": "x", "width": 1024, "height": 1024.25},
        "height",
        "'height' must be an integer, got 1024.25",
    ),
    _bad("size-nulls", {"prompt": "x", "width": None, "height": None}, "width", "'width' must be an integer, got null"),
    _bad(
        "height-bool",
        {"prompt": "x", "width": 1024, "height": True},
        "height",
        "'height' must be an integer, got a boolean",
    ),
    # unknown keys
    _bad("unknown-sampler", {"prompt": "x", "sampler": "euler"}, "sampler", "unknown field 'sampler'"),
    _bad("unknown-steps", {"prompt": "x", "steps": 50}, "steps", "unknown field 'steps'; allowed fields: prompt"),
    _bad("unknown-case", {"Prompt": "x"}, "Prompt", "unknown field 'Prompt'"),
    _bad("unknown-empty-key", {"prompt": "x", "": 1}, "", "unknown field ''"),
    _bad("unknown-proto", {"prompt": "x", "__proto__": {}}, "__proto__", "unknown field '__proto__'"),
    _bad("double-wrapped", {"input": {"prompt": "x"}}, "input", "unknown field 'input'"),
    # workflow values that are not allowed (the allowlist is empty by default)
    _bad(
        "workflow-not-enabled",
        {"prompt": "x", "workflow": "alpha_txt2img_conv"},
        "workflow",
        "'workflow' is not enabled on this worker",
    ),
    _bad(
        "workflow-traversal",
        {"prompt": "x", "workflow": "../workflows/alpha_txt2img"},
        "workflow",
        "'workflow' must be a workflow name",
    ),
    _bad(
        "workflow-absolute",
        {"prompt": "x", "workflow": "/etc/passwd"},
        "workflow",
        "'workflow' must be a workflow name (letters, digits, '_', '-', '.'), got '/etc/passwd'",
    ),
    _bad("workflow-empty", {"prompt": "x", "workflow": ""}, "workflow", "'workflow' must be a workflow name"),
    _bad("workflow-space", {"prompt": "x", "workflow": "alpha txt2img"}, "workflow", "got 'alpha txt2img'"),
    _bad("workflow-too-long", {"prompt": "x", "workflow": "w" * 65}, "workflow", "'workflow' must be a workflow name"),
    _bad("workflow-int", {"prompt": "x", "workflow": 7}, "workflow", "got an integer"),
    _bad("workflow-null", {"prompt": "x", "workflow": None}, "workflow", "got null"),
    _bad("workflow-array", {"prompt": "x", "workflow": ["alpha_txt2img"]}, "workflow", "got an array"),
    # the asset options: trim, trim_margin (only with trim: true), format, delivery
    _bad("trim-string", {"prompt": "x", "trim": "true"}, "trim", "'trim' must be true or false, got a string"),
    _bad("trim-int", {"prompt": "x", "trim": 1}, "trim", "'trim' must be true or false, got an integer"),
    _bad("trim-null", {"prompt": "x", "trim": None}, "trim", "'trim' must be true or false, got null"),
    _bad("margin-without-trim", {"prompt": "x", "trim_margin": 8}, "trim_margin", "applies only with 'trim': true"),
    _bad(
        "margin-with-trim-false",
        {"prompt": "x", "trim": False, "trim_margin": 0},
        "trim_margin",
        "'trim_margin' applies only with 'trim': true",
    ),
    _bad("margin-513", {"prompt": "x", "trim": True, "trim_margin": 513}, "trim_margin", "from 0 to 512, got 513"),
    _bad("margin-negative", {"prompt": "x", "trim": True, "trim_margin": -1}, "trim_margin", "got -1"),
    _bad("margin-float", {"prompt": "x", "trim": True, "trim_margin": 8.5}, "trim_margin", "an integer, got 8.5"),
    _bad("margin-integral-past", {"prompt": "x", "trim": True, "trim_margin": 513.0}, "trim_margin", "got 513.0"),
    _bad("margin-string", {"prompt": "x", "trim": True, "trim_margin": "8"}, "trim_margin", "got a string"),
    _bad(
        "format-jpeg", {"prompt": "x", "format": "jpeg"}, "format", "'format' must be one of 'png', 'webp', got 'jpeg'"
    ),
    _bad("format-upper", {"prompt": "x", "format": "WEBP"}, "format", "got 'WEBP'"),
    _bad("format-null", {"prompt": "x", "format": None}, "format", "'format' must be one of 'png', 'webp', got null"),
    _bad("format-array", {"prompt": "x", "format": ["png"]}, "format", "got an array"),
    _bad("delivery-s3", {"prompt": "x", "delivery": "s3"}, "delivery", "'inline', 'base64', 'bucket', got 's3'"),
    _bad("delivery-int", {"prompt": "x", "delivery": 1}, "delivery", "'delivery' must be one of"),
    _bad("delivery-null", {"prompt": "x", "delivery": None}, "delivery", "got null"),
    # the layer modes: mode, and its image (background or foreground)
    _bad("mode-layers", {"prompt": "x", "mode": "layers"}, "mode", "'mode' must be one of 'text', 'foreground'"),
    _bad("mode-null", {"prompt": "x", "mode": None}, "mode", "got null"),
    _bad("mode-without-image", {"prompt": "x", "mode": "foreground"}, "background", "'background' is required"),
    _bad(
        "background-without-mode",
        {"prompt": "x", "background": BACKGROUND},
        "background",
        f"'background' applies only with 'mode': {LAYER_MODE['foreground']}",
    ),
    _bad(
        "both-images",
        {"prompt": "x", "mode": "foreground", "background": BACKGROUND, "foreground": FOREGROUND},
        "foreground",
        f"'foreground' applies only with 'mode': {LAYER_MODE['background']}",
    ),
    _bad(
        "image-with-workflow",
        {"prompt": "x", "mode": "foreground", "background": BACKGROUND, "workflow": "alpha_txt2img"},
        "workflow",
        f"'workflow' applies only with 'mode': {LAYER_MODE['text']}",
    ),
    _bad("image-null", {"prompt": "x", "mode": "foreground", "background": None}, "background", "got null"),
    _bad("image-not-base64", {"prompt": "x", "mode": "foreground", "background": "a cat!"}, "background", "base64"),
    _bad(
        "image-truncated",
        {"prompt": "x", "mode": "foreground", "background": raw(saved(background())[:300])},
        "background",
        "'background' is truncated or corrupt",
    ),
    _bad(
        "image-text-named-png",
        {"prompt": "x", "mode": "foreground", "background": "data:image/png;base64," + raw(b"a glass apple\n" * 9)},
        "background",
        "'background' is not an image",
    ),
    _bad(
        "image-gif",
        {"prompt": "x", "mode": "foreground", "background": encoded(background(), "GIF")},
        "background",
        "is not a PNG, JPEG or WebP image (found GIF)",
    ),
    _bad(
        "image-bomb",
        {"prompt": "x", "mode": "foreground", "background": raw(png_header(30000, 30000))},
        "background",
        "the limit is 25000000",
    ),
    _bad(
        "image-1x1",
        {"prompt": "x", "mode": "foreground", "background": encoded(Image.new("RGB", (1, 1)))},
        "background",
        "is 1x1; each side must be at least 64 pixels",
    ),
    _bad(
        "image-huge",
        {"prompt": "x", "mode": "foreground", "background": raw(saved(background())[:64].ljust(MAX_IMAGE_BYTES + 1))},
        "background",
        f"bytes; the limit is {MAX_IMAGE_BYTES}",
    ),
    _bad(
        "image-too-long",
        {"prompt": "x", "mode": "foreground", "background": "A" * (MAX_BASE64_CHARS + 1)},
        "background",
        f"characters long; the limit is {MAX_BASE64_CHARS}",
    ),
    _bad(
        "foreground-flat-alpha",
        {"prompt": "x", "mode": "background", "foreground": encoded(Image.new("RGBA", (96, 96), (9, 9, 9, 255)))},
        "foreground",
        "every pixel's alpha is 255",
    ),
    _bad(
        "foreground-jpeg",
        {"prompt": "x", "mode": "background", "foreground": encoded(background(), "JPEG")},
        "foreground",
        "'foreground' has no alpha channel",
    ),
    _bad(
        "image-wrong-size",
        {"prompt": "x", "mode": "foreground", "background": WIDE, "width": 1024, "height": 1024},
        "background",
        "which fits 1344x768; it does not fit the requested 1024x1024",
    ),
    # input that is not an object
    _bad("input-list", ["prompt"], None, f"{NOT_OBJECT}, got an array", 422),
    _bad("input-empty-list", [], None, f"{NOT_OBJECT}, got an array", 422),
    _bad("input-string", "a glass apple", None, f"{NOT_OBJECT}, got a string", 422),
    _bad("input-null", None, None, f"{NOT_OBJECT}, got null", 422),
    _bad("input-number", 7, None, f"{NOT_OBJECT}, got an integer", 422),
    _bad("input-bool", True, None, f"{NOT_OBJECT}, got a boolean", 422),
]


@dataclass(frozen=True)
class BadBody:
    """A raw request body. The alpha API gets ``body`` as its whole body; RunPod's ``/runsync`` gets it as the
    ``input`` (``{"input": <body>}``, byte for byte). Expected: the alpha API's status, code and field; RunPod's
    status (422: its request model refused the body, or it is not JSON; 400: it is not UTF-8; 200: a FAILED job
    whose error starts with ``invalid_input: ``)."""

    id: str
    body: bytes
    alpha_status: int
    alpha_code: str
    alpha_field: str | None
    runpod_status: int


BAD_BODIES: list[BadBody] = [
    BadBody("not-json", b"not json", 400, "invalid_input", None, 422),
    BadBody("empty-body", b"", 400, "invalid_input", None, 422),
    BadBody("truncated", b'{"prompt": "a glass', 400, "invalid_input", None, 422),
    BadBody("trailing-garbage", b'{"prompt": "x"} and more', 400, "invalid_input", None, 422),
    BadBody("single-quotes", b"{'prompt': 'x'}", 400, "invalid_input", None, 422),
    BadBody("invalid-utf8", b'{"prompt": "\xff\xfe"}', 400, "invalid_input", None, 400),
    BadBody("binary", b"\x89PNG\r\n\x1a\n\x00\x00", 400, "invalid_input", None, 400),  # not UTF-8
    BadBody("duplicate-key", b'{"prompt": "x", "prompt": 5}', 400, "invalid_input", "prompt", 200),
    BadBody("raw-lone-surrogate", b'{"prompt": "\\ud800"}', 400, "invalid_input", "prompt", 200),
    BadBody("raw-nul", b'{"prompt": "a\\u0000b"}', 400, "invalid_input", "prompt", 200),
    # Over ALPHA_SERVE_MAX_BODY_BYTES's default, 10 MiB (an input image travels in the body).
    BadBody("over-body-limit", b'{"prompt": "' + b"a" * (10 * 2**20) + b'"}', 413, "body_too_large", None, 200),
]

# Whole /runsync bodies RunPod's local API refuses itself (HTTP 422), before any handler runs.
RUNPOD_BAD_ENVELOPES: list[tuple[str, bytes]] = [
    ("no-input", b"{}"),
    ("array", b"[]"),
    ("null", b"null"),
    ("input-misspelt", b'{"inputs": {"prompt": "x"}}'),
    ("webhook-not-a-string", b'{"input": {"prompt": "x"}, "webhook": 5}'),
]

# Prompts that are valid though they look odd: right-to-left text, zero-width and joiner characters, combining
# marks, emoji sequences, exactly 2,000 characters, ComfyUI weights at their limits, escaped parentheses.
VALID_PROMPTS: list[str] = [
    "\u05ea\u05e4\u05d5\u05d7 \u05d6\u05db\u05d5\u05db\u05d9\u05ea",  # Hebrew, right to left
    "a glass apple \u200f\u202e\u2066mirrored\u2069",  # RTL marks and isolates
    "a\u200bglass\u200capple\u200d\ufeff",  # zero-width space, non-joiner, joiner, BOM
    "cafe\u0301 cre\u0300me bru\u0302le\u0301e",  # combining accents
    "\U0001f469\u200d\U0001f52c with a \U0001f34e",  # an emoji ZWJ sequence
    "x" * 2000,
    "e" + "\u0301" * 1999,
    "(apple:-10) (pear:10), " + "(" * 24 + "shiny" + ")" * 24,
    "\\(literal parentheses\\), ratio 16:9, the word embedding : here",
]
