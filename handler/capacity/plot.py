"""``--plot FILE``: the cost/p95 frontier of a ``recommend``, or workers and queue over time of a ``simulate``.

matplotlib is imported here, inside the functions, and this module only when ``--plot`` is given: the image
installs requirements.txt alone, and serves jobs without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from handler.capacity.traffic import InputError

HOUR_S = 3600.0


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "--plot", "needs matplotlib (requirements-dev.txt: pip install -c constraints.txt matplotlib)"
        ) from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def frontier(path: Path, report: dict[str, Any], points: list[tuple[float, float]]) -> None:
    """Every configuration simulated (cost an hour against p95 latency), the frontier, the target, the choice and
    what was passed over on its way."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 5.5), layout="constrained")
    costs, p95s = zip(*points, strict=True) if points else ((), ())
    axes.scatter(costs, p95s, s=12, color="#b0b0b0", label="simulated")
    line = report["frontier"]
    axes.plot([e["cost_per_hour"] for e in line], [e["p95_s"] for e in line], "o-", color="#1f77b4", label="frontier")
    target = report["target"]["p95_s"]
    axes.axhline(target, color="#d62728", linestyle="--", label=f"target p95 {target:g} s")
    over = report.get("passed_over") or []
    if over:
        axes.scatter(
            [e["cost_per_hour"] for e in over],
            [e["p95_s"] for e in over],
            marker="x",
            s=90,
            color="#d62728",
            zorder=3,
            label="met the target, failed the re-check",
        )
    if report["choice"] is not None:
        chosen = report["result"]
        axes.plot(chosen["cost_usd"]["per_hour"], chosen["latency_s"]["p95"], "*", markersize=18, color="#2ca02c")
        settings = report["choice"]
        axes.annotate(
            f"choice: active {settings['active']}, max {settings['max']}, idle {settings['idle_timeout_s']} s,\n"
            f"{settings['scaler']}, {settings['pool']}",
            (chosen["cost_usd"]["per_hour"], chosen["latency_s"]["p95"]),
            textcoords="offset points",
            xytext=(50, 45),
            arrowprops={"arrowstyle": "-", "color": "#2ca02c"},
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#2ca02c"},
        )
    axes.set_yscale("log")
    plain = plt.FuncFormatter(lambda value, _: f"{value:g}")
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    axes.set_xlabel("cost, US dollars an hour")
    axes.set_ylabel("p95 latency, seconds (log)")
    axes.set_title("Capacity plan: cost against p95 latency")
    axes.legend(loc="lower left")
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _binned(samples: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The samples averaged over ``points`` equal bins (a worker count sampled now and then aliases: the mean over
    each bin is what was paid for), and the queue's largest sample in each bin."""
    bins = np.array_split(samples, min(points, len(samples)))
    means = np.array([chunk.mean(axis=0) for chunk in bins])
    peaks = np.array([chunk[:, 4].max() for chunk in bins])
    return means[:, 0], means, peaks


def timeline(path: Path, samples: np.ndarray, arrivals: np.ndarray, title: str, points: int = 600) -> None:
    """Requests a minute, workers (busy, idle, starting: each bin's mean) and the queue (mean and peak), over time."""
    plt = _pyplot()
    figure, (rate, workers, queue) = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, layout="constrained")
    times, means, peaks = _binned(samples, points)
    hours = times / HOUR_S
    span = samples[-1, 0] if samples.size else 1.0
    edges = np.arange(0.0, span + 60.0, 60.0)
    counts, _ = np.histogram(arrivals, edges)
    rate.step(edges[:-1] / HOUR_S, counts, where="post", color="#555555", linewidth=0.8)
    rate.set_ylabel("requests a minute")
    workers.stackplot(
        hours,
        means[:, 1],
        means[:, 2],
        means[:, 3],
        labels=("busy", "idle", "starting"),
        colors=("#1f77b4", "#aec7e8", "#ff7f0e"),
    )
    workers.set_ylabel("workers (mean)")
    workers.legend(loc="upper right")
    queue.fill_between(hours, peaks, color="#f4b6b6", step="mid", label="peak")
    queue.plot(hours, means[:, 4], color="#d62728", linewidth=0.9, label="mean")
    queue.set_ylabel("queued requests")
    queue.set_xlabel("hours")
    queue.legend(loc="upper right")
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
