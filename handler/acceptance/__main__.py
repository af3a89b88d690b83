"""``python -m handler.acceptance --endpoint URL``: the acceptance run against a deployed endpoint.

    python -m handler.acceptance --endpoint https://api.runpod.ai/v2/<endpoint id> --api-key-env RUNPOD_API_KEY
    python -m handler.acceptance --endpoint http://127.0.0.1:8000           # RunPod's local API (--rp_serve_api)
    python -m handler.acceptance --endpoint http://127.0.0.1:7861           # the local alpha API

Writes report.html and report.json under --out; prints one line per prompt; exits 0 only when every
criterion held for every prompt (1 otherwise, 2 for a usage error).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from handler.acceptance import report
from handler.acceptance.checks import Result, check
from handler.acceptance.clients import MODES, ApiError, Client, Http, detect
from handler.acceptance.prompts import DEFAULT_PROMPTS, cases, read_prompts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m handler.acceptance", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True, help="RunPod endpoint URL (.../v2/<id>), or a local API's URL")
    parser.add_argument("--api-key-env", metavar="NAME", help="environment variable that holds the API key")
    parser.add_argument("--out", type=Path, default=Path("acceptance-report"), help="report folder")
    parser.add_argument("--prompts", type=Path, metavar="FILE", help="one prompt a line (default: 6 built in)")
    parser.add_argument("--mode", choices=MODES, default="auto", help="API (auto: from the URL, or by asking)")
    parser.add_argument("--job-timeout", type=float, default=900, metavar="S", help="per prompt, queue included")
    parser.add_argument("--poll-interval", type=float, default=2, metavar="S", help="/status polling interval")
    return parser.parse_args(argv)


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


def run_cases(client: Client, prompts: tuple[str, ...], mode: str) -> list[Result]:
    results = []
    for case in cases(prompts):
        try:
            result = check(case, client.send(case.job_input()), mode)
        except ApiError as exc:
            result = Result(case, None, error=str(exc))
        results.append(result)
        line(result)
    return results


def line(result: Result) -> None:
    failed = [f"{c.name}: {c.detail}" for c in result.criteria if c.ok is False]
    why = result.error or "; ".join(failed)
    took = f"{result.answer.latency_ms / 1000:.1f} s" if result.answer else "-"
    verdict = "PASS" if result.passed else "FAIL"
    sys.stdout.write(
        f"{verdict} {result.case.number:>2}  {took:>8}  {result.case.prompt[:60]}{'  ' + why if why else ''}\n"
    )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.endpoint.rstrip("/")
    try:
        prompts = read_prompts(args.prompts) if args.prompts else DEFAULT_PROMPTS
        key = api_key(args.api_key_env)
        mode = detect(base, Http({}, 30)) if args.mode == "auto" else args.mode
    except (OSError, ValueError, ApiError) as exc:
        sys.stderr.write(f"acceptance: {exc}\n")
        return 2
    http = Http(auth_headers(mode, key), timeout=max(args.job_timeout, 30))
    client = Client(base, mode, http, poll_s=args.poll_interval, job_timeout_s=args.job_timeout)
    sys.stdout.write(f"acceptance run: {base} ({mode}), {len(prompts)} prompts\n")
    results = run_cases(client, prompts, mode)
    written = report.write(args.out, base, mode, results)
    sys.stdout.write(f"{'PASSED' if written['passed'] else 'FAILED'}; report: {args.out / 'report.html'}\n")
    return 0 if written["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
