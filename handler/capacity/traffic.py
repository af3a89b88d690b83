"""Where the requests come from: Poisson arrivals at a rate, or a replayed trace of request timestamps.

Every error is an ``InputError`` naming the flag it is about, so the command line can say which flag to fix.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HOUR_S = 3600.0


class InputError(ValueError):
    """A bad input, told as ``--flag: what is wrong``."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag


@dataclass(frozen=True)
class Traffic:
    arrivals: np.ndarray  # seconds from the start, sorted
    horizon_s: float  # the simulated time
    source: str  # where the arrivals came from, for the output


def poisson(rate_per_min: float, hours: float, rng: np.random.Generator) -> Traffic:
    """Arrivals of a Poisson process over ``hours``: exponential gaps, drawn in blocks until past the horizon."""
    if not rate_per_min > 0 or not math.isfinite(rate_per_min):
        raise InputError("--rate-per-min", f"must be a number above 0, not {rate_per_min:g}")
    horizon = hours * HOUR_S
    rate_s = rate_per_min / 60.0
    expected = rate_s * horizon
    block = int(expected + 6 * math.sqrt(expected) + 16)  # one block almost always reaches the horizon
    parts, last = [], 0.0
    while last < horizon:
        times = last + np.cumsum(rng.exponential(1.0 / rate_s, block))
        parts.append(times)
        last = float(times[-1])
    arrivals = np.concatenate(parts)
    return Traffic(arrivals[arrivals < horizon], horizon, f"Poisson, {rate_per_min:g} requests a minute")


def _seconds(field: str) -> float | None:
    try:
        value = float(field)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _instant(field: str) -> float | None:
    try:
        moment = datetime.fromisoformat(field)
    except ValueError:
        return None
    # A timestamp without a zone is read as UTC: only the gaps between requests matter.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _stamps(path: Path) -> list[tuple[int, str]]:
    """(line number, first field) of every line that is neither blank nor a ``#`` comment."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("--trace", f"cannot read {path}: {exc}") from None
    return [
        (number, row[0].strip())
        for number, row in enumerate(rows, start=1)
        if row and row[0].strip() and not row[0].lstrip().startswith("#")
    ]


def _parse(stamps: list[tuple[int, str]], path: Path) -> list[float]:
    """The timestamps as seconds, all in one format (seconds, or ISO 8601); a first line in neither is a header."""
    if stamps and _seconds(stamps[0][1]) is None and _instant(stamps[0][1]) is None:
        stamps = stamps[1:]
    if not stamps:
        raise InputError("--trace", f"{path} has no request timestamps")
    reader = _seconds if _seconds(stamps[0][1]) is not None else _instant
    kind = "seconds" if reader is _seconds else "ISO 8601"
    times: list[float] = []
    for number, field in stamps:
        value = reader(field)
        if value is None:
            raise InputError(
                "--trace", f"{path} line {number}: {field!r} is not a timestamp in {kind}, as the first one is"
            )
        if times and value < times[-1]:
            raise InputError("--trace", f"{path} line {number}: {field!r} is earlier than the line before (not sorted)")
        times.append(value)
    return times


def trace(path: Path, hours: float | None) -> Traffic:
    """A replayed trace, shifted to start at 0; cut at ``hours`` when given, else as long as the trace."""
    times = np.asarray(_parse(_stamps(path), path))
    times -= times[0]
    span = float(times[-1])
    if hours is None:
        return Traffic(times, max(span, 1.0), f"trace {path.name}: {times.size} requests over {span / HOUR_S:.2f} h")
    horizon = hours * HOUR_S
    kept = times[times < horizon]
    cut = f", cut at {hours:g} h ({times.size - kept.size} later requests left out)" if kept.size < times.size else ""
    return Traffic(kept, horizon, f"trace {path.name}: {times.size} requests over {span / HOUR_S:.2f} h{cut}")


def peak_rate_per_s(traffic: Traffic, window_s: float = 300.0) -> float:
    """The busiest window's arrival rate: what the search sizes ``max`` for."""
    if traffic.arrivals.size == 0:
        return 0.0
    ends = np.searchsorted(traffic.arrivals, traffic.arrivals + window_s)
    busiest = int((ends - np.arange(traffic.arrivals.size)).max())
    return busiest / min(window_s, traffic.horizon_s)
