"""A second chance on flat alpha (``ALPHA_TRANSPARENCY_RETRIES``).

LayerDiffuse sometimes does not take on a seed, and the job fails the transparency check. When the request left
the seed to us, another seed usually works: the job runs again with a new random one, up to the setting's number
of times, inside the same deadline. A request that gave its seed asked for that exact image: it is never retried.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from handler.deadline import Deadline
from handler.errors import TransparencyError
from handler.logs import JobLog
from handler.request import MAX_SEED

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    seed: int
    rejected: str | None = None  # why the transparency check refused it; None: it passed

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rejected": self.rejected}


def new_seed(tried: list[Attempt]) -> int:
    """A random seed no attempt of this job has used."""
    used = {attempt.seed for attempt in tried}
    while (seed := secrets.randbelow(MAX_SEED + 1)) in used:
        pass
    return seed


def failure(tried: list[Attempt], out_of_time: bool) -> TransparencyError:
    """The job's error: a single attempt's own message, or every attempt with its seed and reason."""
    if len(tried) == 1 and not out_of_time:
        return TransparencyError(str(tried[0].rejected))  # as it was before retries existed
    reasons = "; ".join(f"attempt {n} (seed {a.seed}): {a.rejected}" for n, a in enumerate(tried, 1))
    late = "; the deadline left no time for another attempt" if out_of_time else ""
    return TransparencyError(f"every attempt failed the transparency check ({len(tried)} seeds): {reasons}{late}")


def run(
    attempt: Callable[[int], T],
    *,
    seed: int | None,
    retries: int,
    deadline: Deadline,
    jlog: JobLog,
    draw: Callable[[list[Attempt]], int] = new_seed,
) -> tuple[T, list[Attempt]]:
    """``attempt(seed)`` until one passes the transparency check; returns its result and every attempt made.
    Raises the failure naming every attempt once the retries (none for a given seed) run out, or when the
    deadline leaves less time than the last attempt took; any other error ends the job as it is."""
    tried: list[Attempt] = []
    while True:
        current = seed if seed is not None else draw(tried)
        started = time.monotonic()
        try:
            result = attempt(current)
        except TransparencyError as exc:
            tried.append(Attempt(current, exc.message))
            if seed is not None or len(tried) > retries:
                raise failure(tried, out_of_time=False) from None
            # Another attempt takes about as long: one that would be cut off by the deadline is not started.
            if deadline.remaining() < time.monotonic() - started:
                raise failure(tried, out_of_time=True) from None
            jlog.warning("attempt %d (seed %d) failed the transparency check; trying a new seed", len(tried), current)
            continue
        tried.append(Attempt(current))
        return result, tried
