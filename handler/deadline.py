"""A monotonic deadline shared by every wait of one job."""

from __future__ import annotations

import time


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.at = self.started + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def cap(self, seconds: float) -> float:
        """The smaller of seconds and what is left, never below a small floor for socket calls."""
        return max(0.05, min(seconds, self.remaining()))

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)
