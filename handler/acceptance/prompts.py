"""The prompts an acceptance run sends: a default set that stresses transparency, or one prompt a line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Each one is hard for an alpha channel in its own way.
DEFAULT_PROMPTS = (
    "a clear glass wine glass half full of red wine, studio lighting",
    "portrait of a woman with long curly windblown hair, loose strands, soft light",
    "a wisp of white smoke curling upward",
    "product shot of a perfume bottle with a gold cap, soft shadow",
    "a cute cartoon fox sticker, bold outline, flat colors",
    "close-up of a red sports car so large it is cut off by the image edges",
)
# Sizes the shipped workflows declare, cycled so that both orientations are asked for.
SIZES = ((1024, 1024), (832, 1216), (1216, 832))
FIRST_SEED = 1000


@dataclass(frozen=True)
class Case:
    number: int
    prompt: str
    seed: int
    width: int
    height: int
    title: str = ""  # what a job of the options tries ("trim + webp"); empty for a prompt
    options: tuple[tuple[str, Any], ...] = ()  # the job input's other fields: trim, format, delivery, mode, image

    def job_input(self) -> dict[str, Any]:
        asked = {"prompt": self.prompt, "seed": self.seed, "width": self.width, "height": self.height}
        return asked | dict(self.options)

    def asked(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    @property
    def format(self) -> str:
        return str(self.asked("format", "png"))

    @property
    def mode(self) -> str:
        return str(self.asked("mode", "text"))

    @property
    def trim(self) -> bool:
        return bool(self.asked("trim", False))

    @property
    def delivery(self) -> str:
        return str(self.asked("delivery", "inline"))


def read_prompts(path: Path) -> tuple[str, ...]:
    """One prompt a line; blank lines are skipped."""
    prompts = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not prompts:
        raise ValueError(f"{path} holds no prompt (one prompt a line)")
    return prompts


def cases(prompts: tuple[str, ...]) -> list[Case]:
    return [
        Case(number, prompt, FIRST_SEED + number, *SIZES[(number - 1) % len(SIZES)])
        for number, prompt in enumerate(prompts, 1)
    ]
