"""``python -m handler.workflow check FILE... [--comfyui URL]``: check workflow files against the contract.

Without ``--comfyui`` it runs the offline rules (``handler.workflow.rules``); with it, also the rules that need the
running ComfyUI (``handler.workflow.online``). It prints a readable report and exits 0 when every file passes, 1
otherwise (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline
from handler.errors import AlphaError, WorkflowError
from handler.workflow import rules
from handler.workflow.graph import read
from handler.workflow.online import ComfyFacts

ONLINE_TIMEOUT_S = 30.0


def check_file(path: Path, online: ComfyFacts | None) -> list[str]:
    try:
        data, _ = read(path)
    except WorkflowError as exc:
        return [exc.message]
    problems = rules.problems(data, path.stem)
    if online is not None and not rules.shape_problems(data, path.stem):
        problems += online.problems(data)
    return problems


def report(results: dict[Path, list[str]], online: bool) -> str:
    scope = "offline and online" if online else "offline only; add --comfyui URL for the online checks"
    lines = []
    for path, problems in results.items():
        if problems:
            lines.append(f"FAIL {path}: {len(problems)} problem(s)")
            lines += [f"  - {problem}" for problem in problems]
        else:
            lines.append(f"OK   {path}")
    failed = sum(1 for p in results.values() if p)
    lines.append(f"{len(results) - failed} of {len(results)} workflow(s) pass ({scope})")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> Any:
    parser = argparse.ArgumentParser(
        prog="python -m handler.workflow", description="Check API-format workflows against the workflow contract."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check workflow files")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument(
        "--comfyui", metavar="URL", help="a running ComfyUI (e.g. http://127.0.0.1:8188) for the online checks"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    online = None
    if args.comfyui:
        try:
            online = ComfyFacts(ComfyClient(args.comfyui, http_timeout_s=ONLINE_TIMEOUT_S), Deadline(ONLINE_TIMEOUT_S))
        except AlphaError as exc:
            sys.stderr.write(f"cannot run the online checks: {exc.message}\n")
            return 1
    results = {path: check_file(path, online) for path in args.files}
    sys.stdout.write(report(results, online is not None))
    return 1 if any(results.values()) else 0
