"""An endpoint's settings as RunPod names them, and the scaler's timing that RunPod's documentation leaves open.

Each setting reads and writes its command-line flag's own syntax (``queue-delay:4``, ``60``), so a recommended
choice can be passed back to ``simulate`` as it stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

QUEUE_DELAY = "queue-delay"
REQUEST_COUNT = "request-count"


def number(value: float) -> int | float:
    """A whole number as an int (``60``, not ``60.0``), so that JSON and flags read as an operator writes them."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Scaler:
    """RunPod's auto-scaling type and its value. ``queue-delay:S`` starts a worker for each request that has
    waited more than S seconds (and one at once when no worker is up at all); ``request-count:N`` keeps
    ``ceil((queued + in progress) / N)`` workers."""

    kind: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Scaler:
        kind, _, raw = text.partition(":")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if kind == QUEUE_DELAY and value > 0 and math.isfinite(value):
            return cls(kind, value)
        if kind == REQUEST_COUNT and value >= 1 and value.is_integer():
            return cls(kind, value)
        raise ValueError(f"{text!r} is not queue-delay:SECONDS (> 0) or request-count:N (a whole number >= 1)")

    def flag(self) -> str:
        return f"{self.kind}:{number(self.value)}"


@dataclass(frozen=True)
class Endpoint:
    active: int
    max: int
    idle_timeout_s: float
    scaler: Scaler
    pool: str

    def choice(self) -> dict[str, Any]:
        """The settings keyed by their flags' names without dashes, each in its flag's syntax."""
        return {
            "active": self.active,
            "max": self.max,
            "idle_timeout_s": number(self.idle_timeout_s),
            "scaler": self.scaler.flag(),
            "pool": self.pool,
        }

    def flags(self) -> str:
        """The same settings as ``simulate`` takes them on its command line."""
        return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in self.choice().items())


@dataclass(frozen=True)
class Timing:
    """How long a worker takes to start, and what RunPod's documentation does not say about its scaler: how
    often it looks at the queue and how many workers it starts at one look. Inputs with stated defaults, never
    hidden constants."""

    cold_start_s: float
    look_s: float = 1.0
    starts_per_look: int = 0  # 0: as many as the scaler's rule asks for
