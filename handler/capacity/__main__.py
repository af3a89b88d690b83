"""``python -m handler.capacity simulate|recommend``: how many workers, which GPU, what it costs, at what p95.

    python -m handler.capacity simulate --rate-per-min 12 --from-report acceptance-report/report.json \\
        --pool ADA_24 --max 4 --idle-timeout-s 60
    python -m handler.capacity recommend --rate-per-min 12 --from-report acceptance-report/report.json \\
        --p95-s 10 --plot frontier.png

Prints a table, or JSON with --json (README, "Capacity planner", has its keys). Exits 0; 2 for a bad input,
naming the flag, and when no configuration searched meets --p95-s (the best found is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from handler.capacity import cli, show
from handler.capacity.plan import Plan
from handler.capacity.search import recommend
from handler.capacity.traffic import InputError

SAMPLES = 15_000  # states sampled for a timeline plot (averaged into fewer points there)


def out(document: dict[str, Any], as_json: bool, text: str) -> None:
    sys.stdout.write((json.dumps(document, indent=2) if as_json else text) + "\n")


def simulate(args: argparse.Namespace) -> int:
    endpoint = cli.endpoint(args)
    plan = cli.plan(args, [endpoint.pool])
    traffic, _ = plan.drawn(endpoint.pool, plan.seed)
    sample_s = max(1.0, traffic.horizon_s / SAMPLES) if args.plot else None
    tally = plan.run(endpoint, sample_s=sample_s)
    document = plan.document(endpoint, tally)
    if args.plot:
        from handler.capacity import plot

        plot.timeline(args.plot, tally.samples, traffic.arrivals, f"{traffic.source}\n{endpoint.flags()}")
        document["plot"] = str(args.plot)
    out(document, args.json, show.simulation(document) + (f"\nplot          {args.plot}" if args.plot else ""))
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    plan: Plan = cli.plan(args, cli.recommend_pools(args))
    space = cli.space(args, plan)
    report, points = recommend(plan, space, args.p95_s)
    if args.plot:
        from handler.capacity import plot

        plot.frontier(args.plot, report, points)
        report["plot"] = str(args.plot)
    out(report, args.json, show.recommendation(report) + (f"\nplot: {args.plot}" if args.plot else ""))
    if report["choice"] is None:
        best = report["best"]
        sys.stderr.write(
            f"capacity recommend: --p95-s {args.p95_s:g}: no configuration in the search space meets it; the best "
            f"found has p95 {best['p95_s']:.2f} s ({show.flags(best['settings'])}). Widen the search "
            "(--search-max-limit, --search-active, --search-scaler, --pool) or relax the target\n"
        )
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, commands = cli.build_parser()
    args = parser.parse_args(argv)
    try:
        return simulate(args) if args.command == "simulate" else run_recommend(args)
    except InputError as exc:
        commands[args.command].error(str(exc))  # usage and the message on stderr, exit status 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
