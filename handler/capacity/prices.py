"""The per-second price of each RunPod GPU pool, from ``data/prices.json`` (its source and date are in the file),
or the price given with ``--price-per-s``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler.capacity.result import Price
from handler.capacity.traffic import InputError

PRICES = Path(__file__).with_name("data") / "prices.json"


@dataclass(frozen=True)
class PriceList:
    pools: dict[str, Price]
    source: str  # where the figures came from, and when

    def price(self, pool: str) -> Price:
        if pool not in self.pools:
            raise InputError("--pool", f"unknown pool {pool!r} (known: {', '.join(self.pools)})")
        return self.pools[pool]


def load(path: Path = PRICES) -> PriceList:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    pools = {name: Price(row["flex_per_s"], row["active_per_s"]) for name, row in data["pools"].items()}
    return PriceList(pools, f"{path.name}: {data['source'].split(' (')[0]}, read {data['read']}")


def override(text: str) -> Price:
    """``--price-per-s FLEX[,ACTIVE]``: one price for both kinds of worker, or each its own."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(value >= 0 for value in values):
        raise InputError("--price-per-s", f"{text!r} is not FLEX or FLEX,ACTIVE (US dollars a second, >= 0)")
    return Price(values[0], values[-1])
