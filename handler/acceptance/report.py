"""The acceptance run's report: ``report.json`` (the numbers) and ``report.html`` (every image over a
checkerboard, black and white, with its criteria, alpha statistics and timings). Both are written from the
same summary, so the page shows what the JSON says. Neither ever holds the API key: it is not passed here.
"""

from __future__ import annotations

import html
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from handler.acceptance.checks import Result

# A first answer this much slower than the median of the others (and by at least COLD_MIN_MS) met a cold
# start: a worker that had to start (pull, ComfyUI, warm-up) before it took the job.
COLD_FACTOR = 2.0
COLD_MIN_MS = 5000


def latency_summary(results: list[Result]) -> dict[str, Any]:
    latencies = [r.answer.latency_ms for r in results if r.answer is not None]
    if not latencies:
        return {"count": 0}
    return {
        "count": len(latencies),
        "min": min(latencies),
        "median": statistics.median(latencies),
        "max": max(latencies),
    }


def cold_start(results: list[Result]) -> dict[str, Any]:
    answered = [r.answer for r in results if r.answer is not None]
    if len(answered) < 2:
        return {"detected": None, "reason": "needs at least two answers"}
    first, warm = answered[0].latency_ms, statistics.median(a.latency_ms for a in answered[1:])
    extra = first - warm
    return {
        "detected": extra >= COLD_MIN_MS and first >= COLD_FACTOR * warm,
        "first_ms": first,
        "warm_median_ms": warm,
        "extra_ms": extra,
        "first_queue_ms": answered[0].queue_ms,
    }


def case_record(result: Result, image: str | None) -> dict[str, Any]:
    answer = result.answer
    return {
        "number": result.case.number,
        "prompt": result.case.prompt,
        "input": result.case.job_input(),
        "passed": result.passed,
        "error": result.error,
        "job_id": answer.job_id if answer else None,
        "status": answer.status if answer else None,
        "criteria": [asdict(c) for c in result.criteria],
        "size": list(result.size) if result.size else None,
        "alpha": result.alpha,
        "test_mode": result.test_mode,
        "timings_ms": {
            "latency": answer.latency_ms if answer else None,
            "queue": answer.queue_ms if answer else None,
            "execution": answer.execution_ms if answer else None,
            "worker": worker_timings(result),
        },
        "image": image,
    }


def worker_timings(result: Result) -> Any:
    output = result.answer.output if result.answer else None
    info = output.get("info") if isinstance(output, dict) else None
    return info.get("timings_ms") if isinstance(info, dict) else None


def write(out: Path, endpoint: str, mode: str, results: list[Result]) -> dict[str, Any]:
    """Write the images, report.json and report.html under ``out``; returns the report."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    cases = []
    for result in results:
        image = None
        if result.png is not None:
            image = f"images/case-{result.case.number:02d}.png"
            (out / image).write_bytes(result.png)
        cases.append(case_record(result, image))
    report = {
        "endpoint": endpoint,
        "mode": mode,
        "passed": bool(results) and all(r.passed for r in results),
        "cases": cases,
        "latency_ms": latency_summary(results),
        "cold_start": cold_start(results),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.html").write_text(page(report), encoding="utf-8")
    return report


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
.case { border: 1px solid #ccc; border-radius: 6px; padding: 12px; margin: 16px 0; }
.pass { color: #0a7d28; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.backgrounds { display: flex; gap: 8px; flex-wrap: wrap; }
.bg { width: 256px; height: 256px; display: flex; align-items: center; justify-content: center; }
.bg img { max-width: 100%; max-height: 100%; }
.checker { background: repeating-conic-gradient(#bbb 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
.black { background: #000; } .white { background: #fff; border: 1px solid #ddd; }
table { border-collapse: collapse; margin-top: 8px; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
"""


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return '<span class="pass">pass</span>' if ok else '<span class="fail">FAIL</span>'


def case_html(case: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c['name'])}</td><td>{verdict(c['ok'])}</td><td>{e(c['detail'])}</td></tr>"
        for c in case["criteria"]
    )
    alpha = case["alpha"] or {}
    stats = ", ".join(f"{e(k)} {e(str(v))}" for k, v in alpha.items()) or "none"
    times = ", ".join(f"{e(k)} {e(json.dumps(v))}" for k, v in case["timings_ms"].items())
    images = (
        "".join(
            f'<div class="bg {name}" title="{name}">'
            f'<img alt="case {case["number"]} over {name}" src="{e(case["image"])}"></div>'
            for name in ("checker", "black", "white")
        )
        if case["image"]
        else "<p>no image</p>"
    )
    error = f"<p class='fail'>{e(case['error'])}</p>" if case["error"] else ""
    return (
        f'<section class="case" id="case-{case["number"]}"><h2>{case["number"]}. {e(case["prompt"])} '
        f'{verdict(case["passed"])}</h2>{error}<div class="backgrounds">{images}</div>'
        f"<table><tr><th>criterion</th><th>result</th><th>detail</th></tr>{rows}</table>"
        f"<p>alpha: {stats}</p><p>timings (ms): {times}</p></section>"
    )


def page(report: dict[str, Any]) -> str:
    e = html.escape
    head = (
        f"<h1>Acceptance run {verdict(report['passed'])}</h1><p>endpoint {e(report['endpoint'])} "
        f"({e(report['mode'])}); {len(report['cases'])} prompts; latency (ms) "
        f"{e(json.dumps(report['latency_ms']))}; cold start {e(json.dumps(report['cold_start']))}</p>"
    )
    body = head + "".join(case_html(case) for case in report["cases"])
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acceptance run</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
