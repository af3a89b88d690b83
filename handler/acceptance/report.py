"""The acceptance run's report: ``report.json`` (the numbers) and ``report.html`` (every image over a
checkerboard, black and white, a layer mode's blended picture and input image, with its criteria, alpha
statistics and timings). Both are written from the same summary, so the page shows what the JSON says. Neither
holds the API key: the key is passed here only to blank it wherever an endpoint echoed it back.
"""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from handler.acceptance import values
from handler.acceptance.options import IMAGE_FIELDS, input_image
from handler.acceptance.results import Result

# A first answer this much slower than the median of the others (and by at least COLD_MIN_MS) met a cold
# start: a worker that had to start (pull, ComfyUI, warm-up) before it took the job.
COLD_FACTOR = 2.0
COLD_MIN_MS = 5000
KEY_SHOWN_AS = "[the API key]"


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


def shown_input(result: Result, image: str | None) -> dict[str, Any]:
    """The job input as sent, a layer mode's image by its length and file."""
    sent = result.case.job_input()
    field = IMAGE_FIELDS.get(result.case.mode)
    if field in sent:
        sent[field] = f"<{len(str(sent[field]))} characters: {image}>"
    return sent


def case_record(result: Result, images: dict[str, str]) -> dict[str, Any]:
    answer = result.answer
    return {
        "number": result.case.number,
        "kind": "option" if result.case.title else "prompt",  # an option's job costs differently (a layer mode: twice)
        "title": result.case.title or None,
        "prompt": result.case.prompt,
        "input": shown_input(result, images.get("input")),
        "outcome": result.outcome,
        "passed": result.passed,
        "not_offered": result.not_offered,
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
        "image": images.get("image"),
        "blended": images.get("blended"),
        "input_image": images.get("input"),
    }


def worker_timings(result: Result) -> dict[str, float] | None:
    output = values.obj(result.answer.output if result.answer else None)
    return values.numbers(values.obj(output.get("info")).get("timings_ms"))


def write_images(out: Path, result: Result) -> dict[str, str]:
    """The images a case shows, written under ``out/images``; their paths, relative to ``out``."""
    stem = f"images/case-{result.case.number:02d}"
    found = {
        "image": (result.image, f"{stem}.{result.image_format}"),
        "blended": (result.blended, f"{stem}-blended.{result.blended_format}"),
        "input": (input_image(result.case), f"{stem}-input.png"),
    }
    written = {}
    for name, (data, path) in found.items():
        if data is not None:
            (out / path).write_bytes(data)
            written[name] = path
    return written


def write(
    out: Path, endpoint: str, mode: str, results: list[Result], redact: Callable[[str], str] = str
) -> dict[str, Any]:
    """Write the images, report.json and report.html under ``out``; returns the report. Latency and the cold
    start are figured over the prompts' jobs: the options' jobs cost differently (a layer mode runs twice)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    prompts = [r for r in results if not r.case.title]
    report = {
        "endpoint": endpoint,
        "mode": mode,
        "passed": bool(results) and all(r.outcome != "fail" for r in results),
        "not_offered": [r.case.title for r in results if r.not_offered],
        "cases": [case_record(result, write_images(out, result)) for result in results],
        "latency_ms": latency_summary(prompts),
        "cold_start": cold_start(prompts),
    }
    (out / "report.json").write_text(redact(json.dumps(report, indent=2)) + "\n", encoding="utf-8")
    (out / "report.html").write_text(redact(page(report)), encoding="utf-8")
    return report


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
.case { border: 1px solid #ccc; border-radius: 6px; padding: 12px; margin: 16px 0; }
.pass { color: #0a7d28; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.backgrounds { display: flex; gap: 8px; flex-wrap: wrap; }
.bg { width: 256px; height: 256px; display: flex; align-items: center; justify-content: center; }
.bg img { max-width: 100%; max-height: 100%; }
.checker { background: repeating-conic-gradient(#bbb 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
.black { background: #000; } .white { background: #fff; border: 1px solid #ddd; } .note { color: #555; }
table { border-collapse: collapse; margin-top: 8px; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
"""


OUTCOMES = {"pass": '<span class="pass">pass</span>', "fail": '<span class="fail">FAIL</span>'}


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return OUTCOMES["pass" if ok else "fail"]


def figure(src: str, background: str, alt: str) -> str:
    e = html.escape
    return f'<div class="bg {background}" title="{e(alt)}"><img alt="{e(alt)}" src="{e(src)}"></div>'


def images_html(case: dict[str, Any]) -> str:
    """The image over three backgrounds; a layer mode's blended picture and input image after it."""
    number = case["number"]
    if not case["image"]:
        return "<p>no image</p>"
    shown = [figure(case["image"], name, f"case {number} over {name}") for name in ("checker", "black", "white")]
    if case["blended"]:
        shown.append(figure(case["blended"], "white", f"case {number}: the blended picture"))
    if case["input_image"]:
        shown.append(figure(case["input_image"], "checker", f"case {number}: the input image"))
    return "".join(shown)


def case_html(case: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c['name'])}</td><td>{verdict(c['ok'])}</td><td>{e(c['detail'])}</td></tr>"
        for c in case["criteria"]
    )
    alpha = case["alpha"] or {}
    stats = ", ".join(f"{e(k)} {e(str(v))}" for k, v in alpha.items()) or "none"
    times = ", ".join(f"{e(k)} {e(json.dumps(v))}" for k, v in case["timings_ms"].items())
    title = f"{e(case['title'])}: " if case["title"] else ""
    outcome = OUTCOMES.get(case["outcome"], e(case["outcome"]))
    why = case["not_offered"] or case["error"]
    note = f"<p class='{'fail' if case['error'] else 'note'}'>{e(why)}</p>" if why else ""
    return (
        f'<section class="case" id="case-{case["number"]}"><h2>{case["number"]}. {title}{e(case["prompt"])} '
        f'{outcome}</h2>{note}<div class="backgrounds">{images_html(case)}</div>'
        f"<table><tr><th>criterion</th><th>result</th><th>detail</th></tr>{rows}</table>"
        f"<p>input: {e(json.dumps(case['input']))}</p><p>alpha: {stats}</p><p>timings (ms): {times}</p></section>"
    )


def page(report: dict[str, Any]) -> str:
    e = html.escape
    skipped = ", ".join(report["not_offered"]) or "none"
    head = (
        f"<h1>Acceptance run {verdict(report['passed'])}</h1><p>endpoint {e(report['endpoint'])} "
        f"({e(report['mode'])}); {len(report['cases'])} jobs; not offered: {e(skipped)}; latency of the prompts "
        f"(ms) {e(json.dumps(report['latency_ms']))}; cold start {e(json.dumps(report['cold_start']))}</p>"
    )
    body = head + "".join(case_html(case) for case in report["cases"])
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acceptance run</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
