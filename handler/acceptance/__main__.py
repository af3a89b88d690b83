"""``python -m handler.acceptance --endpoint URL``: the acceptance run against a deployed endpoint.

    python -m handler.acceptance --endpoint https://api.runpod.ai/v2/<endpoint id> --api-key-env RUNPOD_API_KEY
    python -m handler.acceptance --endpoint http://127.0.0.1:8000           # RunPod's local API (--rp_serve_api)
    python -m handler.acceptance --endpoint http://127.0.0.1:7861           # the local alpha API

It sends the prompts (six built in, or --prompts FILE), then one job for each option the worker offers: trim
with a lossless WebP, delivery base64, and each layer mode with an input image of its own. Each answer is
checked against the job that asked for it. A layer mode the endpoint refuses with mode_unavailable (off, or its
model files missing), and delivery on the alpha API (which answers with file URLs), are not offered: reported
as such, not as failures.

Writes report.html and report.json under --out (checked before the first request); prints one line per job;
exits 0 only when every criterion held for every job the endpoint offers (1 otherwise, 2 for a usage error).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from handler.acceptance import report
from handler.acceptance.checks import check
from handler.acceptance.clients import MODES, Client, detect
from handler.acceptance.options import not_offered, option_cases, unavailable
from handler.acceptance.prompts import DEFAULT_PROMPTS, Case, cases, read_prompts
from handler.acceptance.results import NO_ANSWER, Result, no_answer
from handler.acceptance.transport import ApiError, Http, origin
from handler.acceptance.values import printable

EPILOG = """\
The API key is read from the variable --api-key-env names, never from the command line. It is sent only to the
endpoint's own scheme, host and port, in a header; no redirect is ever followed (a 30x fails the job), and a
file URL on another origin is not fetched. Where the endpoint echoes the key back, the report and this output
show it blanked. --job-timeout bounds each job from its submission to the last byte of its answer.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handler.acceptance",
        description="The acceptance run against a deployed endpoint.\n" + __doc__.split("\n", 1)[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--endpoint", required=True, help="RunPod endpoint URL (.../v2/<id>), or a local API's URL")
    parser.add_argument("--api-key-env", metavar="NAME", help="environment variable that holds the API key")
    parser.add_argument("--out", type=Path, default=Path("acceptance-report"), help="report folder")
    parser.add_argument("--prompts", type=Path, metavar="FILE", help="one prompt a line (default: 6 built in)")
    parser.add_argument("--mode", choices=MODES, default="auto", help="API (auto: from the URL, or by asking)")
    parser.add_argument(
        "--job-timeout", type=seconds, default=900, metavar="S", help="per job, submission to last byte, queue included"
    )
    parser.add_argument("--poll-interval", type=interval, default=2, metavar="S", help="/status polling interval")
    return parser.parse_args(argv)


def seconds(text: str, *, least: float = 0.001) -> float:
    value = float(text)
    if not math.isfinite(value) or value < least:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds, at least {least:g}")
    return value


def interval(text: str) -> float:
    return seconds(text, least=0)


def endpoint_of(text: str) -> str:
    """The endpoint's URL: http or https, with no credentials in it (the key goes in --api-key-env)."""
    base = text.rstrip("/")
    if origin(base) is None:
        raise ValueError(f"--endpoint {printable(text)}: not an http or https URL")
    if urllib.parse.urlsplit(base).password is not None:
        raise ValueError("--endpoint: a URL with a password in it; put the key in the variable --api-key-env names")
    return base


def check_out(out: Path) -> None:
    """--out, before the first request: a folder (made when missing) that takes files."""
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".acceptance-"):
            pass
    except OSError as exc:
        raise ValueError(f"--out {out}: {exc.strerror or exc}") from None
    taken = [name for name in ("report.json", "report.html") if (out / name).is_dir()]
    if taken:
        raise ValueError(f"--out {out}: {taken[0]} is a folder")


def api_key(name: str | None) -> str | None:
    """The key from the variable the user named. A command-line tool's own input, read here and only here (the
    worker's settings object is for the worker); never taken from the command line, where it would land in
    shell history and process lists, and never logged or written."""
    if name is None:
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise SystemExit(f"acceptance: the variable {name} (--api-key-env) is not set or empty")
    return key


def auth_headers(mode: str, key: str | None) -> dict[str, str]:
    if key is None:
        return {}
    return {"Authorization": f"Bearer {key}" if mode == "alpha" else key}


def run_case(client: Client, case: Case, api: str) -> Result:
    """One job, sent and checked; whatever the endpoint answers, a result."""
    reason = not_offered(api, case)
    if reason:
        return Result(case, None, not_offered=reason)
    answer = None
    try:
        answer = client.send(case.job_input())
        reason = unavailable(case, answer.code, answer.error)
        return Result(case, answer, not_offered=reason) if reason else check(case, answer, api)
    except ApiError as exc:
        return no_answer(case, str(exc))
    except Exception as exc:  # the last guard: an answer this tool cannot read fails its job, the run goes on
        return no_answer(case, f"the answer could not be checked: {type(exc).__name__}: {printable(str(exc))}", answer)


def line(result: Result, redact: Callable[[str], str]) -> None:
    case = result.case
    failed = [f"{c.name}: {c.detail}" for c in result.criteria if c.ok is False and c.detail != NO_ANSWER]
    why = result.not_offered or "; ".join(failed)
    took = f"{result.answer.latency_ms / 1000:.1f} s" if result.answer else "-"
    verdict = {"pass": "PASS", "fail": "FAIL", "not offered": "SKIP"}[result.outcome]
    what = f"{case.title}: {case.prompt}" if case.title else case.prompt
    sys.stdout.write(redact(f"{verdict} {case.number:>2}  {took:>8}  {what[:60]}{'  ' + why if why else ''}\n"))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        base = endpoint_of(args.endpoint)
        prompts = read_prompts(args.prompts) if args.prompts else DEFAULT_PROMPTS
        key = api_key(args.api_key_env)
        check_out(args.out)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"acceptance: {exc}\n")
        return 2
    mode = detect(base, Http(base, {})) if args.mode == "auto" else args.mode
    client = Client(
        base, mode, Http(base, auth_headers(mode, key)), poll_s=args.poll_interval, job_timeout_s=args.job_timeout
    )
    jobs = cases(prompts) + option_cases(len(prompts) + 1)

    def redact(text: str) -> str:
        return text.replace(key, report.KEY_SHOWN_AS) if key else text

    sys.stdout.write(
        f"acceptance run: {base} ({mode}), {len(prompts)} prompts and {len(jobs) - len(prompts)} options\n"
    )
    results = []
    for case in jobs:
        results.append(run_case(client, case, mode))
        line(results[-1], redact)
    try:
        written = report.write(args.out, base, mode, results, redact)
    except OSError as exc:
        sys.stderr.write(f"acceptance: the report could not be written under --out {args.out}: {exc}\n")
        return 1
    skipped = f"; not offered: {', '.join(written['not_offered'])}" if written["not_offered"] else ""
    sys.stdout.write(f"{'PASSED' if written['passed'] else 'FAILED'}{skipped}; report: {args.out / 'report.html'}\n")
    return 0 if written["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
