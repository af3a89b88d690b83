"""What the acceptance run found for one job: its criteria, each passed, failed or not applying, and the images
and figures the report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handler.acceptance.clients import Answer
from handler.acceptance.prompts import Case

NO_ANSWER = "no answer"
CRITERIA = ("status", "data_uri", "base64", "format", "rgba", "alpha", "size", "mode", "layers")


@dataclass(frozen=True)
class Criterion:
    name: str
    ok: bool | None  # None: does not apply to this API or this job
    detail: str


@dataclass
class Result:
    case: Case
    answer: Answer | None
    criteria: list[Criterion] = field(default_factory=list)
    image: bytes | None = None  # the main image, when it decoded
    image_format: str | None = None  # "png" or "webp"
    blended: bytes | None = None  # a layer mode's blended picture, when it decoded
    blended_format: str | None = None
    alpha: dict[str, Any] | None = None
    size: tuple[int, int] | None = None
    test_mode: dict[str, int | None] | None = None
    error: str | None = None
    not_offered: str | None = None  # why the endpoint does not serve what the job asks

    @property
    def passed(self) -> bool:
        checked = {c.name for c in self.criteria}
        return (
            self.not_offered is None
            and self.error is None
            and checked == set(CRITERIA)
            and all(c.ok is not False for c in self.criteria)
        )

    @property
    def outcome(self) -> str:
        return "not offered" if self.not_offered else "pass" if self.passed else "fail"


def no_answer(case: Case, why: str, answer: Answer | None = None) -> Result:
    """A job that got no answer to check: its status criterion says why, and the rest have nothing to check."""
    criteria = [Criterion("status", False, why)] + [Criterion(name, False, NO_ANSWER) for name in CRITERIA[1:]]
    return Result(case, answer, criteria, error=why)
