"""Every acceptance criterion, checked on one answer.

A success answer is: status success, ``url`` a PNG data URI, ``image_base64`` the same bytes, a PNG, RGBA,
an alpha channel neither flat nor empty (by the worker's own rule: at most ``ALPHA_MAX_UNIFORM_ALPHA`` of
the pixels fully opaque, or fully transparent), and the size asked for. The alpha API sends the PNG as a
file, not base64: its two base64 criteria do not apply (``ok`` None).
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from handler.acceptance.clients import Answer
from handler.acceptance.prompts import Case
from handler.errors import AlphaError, TransparencyError
from handler.png import check_rgba
from handler.settings import Settings

DATA_URI = "data:image/png;base64,"
CRITERIA = ("status", "data_uri", "base64", "png", "rgba", "alpha", "size")
MAX_UNIFORM = Settings().max_uniform_alpha  # the worker's default rule


@dataclass(frozen=True)
class Criterion:
    name: str
    ok: bool | None  # None: does not apply to this API
    detail: str


@dataclass
class Result:
    case: Case
    answer: Answer | None
    criteria: list[Criterion] = field(default_factory=list)
    png: bytes | None = None
    alpha: dict[str, Any] | None = None
    size: tuple[int, int] | None = None
    test_mode: dict[str, Any] | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        checked = {c.name for c in self.criteria}
        return self.error is None and checked == set(CRITERIA) and all(c.ok is not False for c in self.criteria)


def check(case: Case, answer: Answer, mode: str, max_uniform: float = MAX_UNIFORM) -> Result:
    """The criteria in CRITERIA's order; those after a failed one that they need fail too, saying why."""
    result = Result(case, answer, error=answer.error)
    body = answer.output if isinstance(answer.output, dict) else {}
    info: dict[str, Any] = body["info"] if isinstance(body.get("info"), dict) else {}
    result.test_mode = info.get("test_mode") if isinstance(info.get("test_mode"), dict) else None
    if mode == "alpha":
        ok = answer.status == "HTTP 200" and answer.png is not None
        result.criteria.append(Criterion("status", ok, f"{answer.status}; file {'fetched' if ok else 'missing'}"))
        result.criteria += [
            Criterion("data_uri", None, "the alpha API answers a file URL"),
            Criterion("base64", None, "the alpha API sends the PNG as a file"),
        ]
        result.png = answer.png
    else:
        result.criteria += runpod_criteria(answer, body)
        result.png = decoded(body)
    result.criteria += image_criteria(result, info, max_uniform)
    return result


def runpod_criteria(answer: Answer, body: dict[str, Any]) -> list[Criterion]:
    success = answer.status == "COMPLETED" and body.get("status") == "success"
    url, b64 = body.get("url"), body.get("image_base64")
    is_uri = isinstance(url, str) and url.startswith(DATA_URI)
    same = is_uri and isinstance(b64, str) and url == DATA_URI + b64
    return [
        Criterion("status", success, f"job {answer.status}, output status {body.get('status')!r}"),
        Criterion("data_uri", is_uri, "url is a PNG data URI" if is_uri else f"url starts {str(url)[:40]!r}"),
        Criterion("base64", same, "image_base64 is the data URI's payload" if same else "image_base64 differs"),
    ]


def decoded(body: dict[str, Any]) -> bytes | None:
    try:
        return base64.b64decode(str(body["image_base64"]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        return None


def image_criteria(result: Result, info: dict[str, Any], max_uniform: float) -> list[Criterion]:
    if result.png is None:
        return [Criterion(name, False, "no image to check") for name in ("png", "rgba", "alpha", "size")]
    try:
        with Image.open(io.BytesIO(result.png)) as image:
            image.load()
            kind, mode, result.size = image.format, image.mode, image.size
    except (UnidentifiedImageError, OSError) as exc:
        return [Criterion("png", False, f"not an image: {exc}")] + [
            Criterion(name, False, "not an image") for name in ("rgba", "alpha", "size")
        ]
    return [
        Criterion("png", kind == "PNG", f"{kind}, {len(result.png)} bytes"),
        Criterion("rgba", mode == "RGBA", mode),
        alpha_criterion(result, max_uniform),
        size_criterion(result, info),
    ]


def alpha_criterion(result: Result, max_uniform: float) -> Criterion:
    assert result.png is not None
    try:
        stats = check_rgba(result.png, max_uniform=1.0).as_dict()  # the figures; the rule is applied below
    except TransparencyError:
        return Criterion("alpha", False, "the alpha channel is one value: all opaque (flat) or all transparent (empty)")
    except AlphaError as exc:
        return Criterion("alpha", False, str(exc))
    result.alpha = stats
    flat, empty = stats["opaque"] > max_uniform, stats["transparent"] > max_uniform
    detail = f"{stats['opaque']:.2%} opaque, {stats['transparent']:.2%} transparent, mean {stats['alpha_mean']}"
    return Criterion("alpha", not (flat or empty), detail + (" (flat)" if flat else " (empty)" if empty else ""))


def size_criterion(result: Result, info: dict[str, Any]) -> Criterion:
    case, got = result.case, result.size
    asked = (case.width, case.height)
    reported = (info.get("width"), info.get("height"))
    if result.test_mode is not None:
        # A test-mode worker validates the size asked for, then runs smaller; it says which.
        expected = (result.test_mode.get("width"), result.test_mode.get("height"))
        note = f"test mode: asked {asked[0]}x{asked[1]}, runs {expected[0]}x{expected[1]}"
    else:
        expected, note = asked, f"asked {asked[0]}x{asked[1]}"
    ok = got == expected and reported == asked
    return Criterion("size", ok, f"{note}; got {got[0]}x{got[1]}" if got else note)
