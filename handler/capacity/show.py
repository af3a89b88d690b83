"""The planner's output as text: what ``simulate`` and ``recommend`` print without ``--json``."""

from __future__ import annotations

from typing import Any

from handler.capacity.endpoint import Endpoint, Scaler


def flags(settings: dict[str, Any]) -> str:
    endpoint = Endpoint(
        settings["active"],
        settings["max"],
        settings["idle_timeout_s"],
        Scaler.parse(settings["scaler"]),
        settings["pool"],
    )
    return endpoint.flags()


def _spread_rows(result: dict[str, Any]) -> list[str]:
    rows = [f"{'':12}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}"]
    for key in ("wait_s", "latency_s"):
        values = result[key]
        rows.append(f"{key:12}" + "".join(f"{values[name]:9.2f}" for name in ("mean", "p50", "p95", "p99")))
    return rows


def simulation(document: dict[str, Any]) -> str:
    """One simulated configuration: settings, inputs and where they came from, then the figures."""
    cold, workers = document["cold_starts"], document["workers"]
    billed, cost = document["billed_worker_s"], document["cost_usd"]
    lines = [
        f"settings      {flags(document['settings'])}",
        f"traffic       {document['traffic']}; seed {document['seed']}: {document['jobs']:,} requests "
        f"over {document['hours']:g} h",
        *(f"  {key:14}{value}" for key, value in document["sources"].items()),
        "",
        *_spread_rows(document),
        "",
        f"cold starts   {cold['per_hour']:g} an hour, {cold['total']:,} in all; {cold['jobs_met']:,} requests "
        f"met one ({cold['jobs_met_share']:.2%})",
        f"workers       mean busy {workers['busy']:g}, idle {workers['idle']:g}, starting {workers['starting']:g}; "
        f"utilisation {workers['utilisation']:.1%}",
        f"billed (s)    busy {billed['busy']:,.0f}, idle {billed['idle']:,.0f}, cold start "
        f"{billed['cold_start']:,.0f}; total {billed['total']:,}",
        f"cost (USD)    {cost['per_hour']:.4f} an hour, {cost['per_1000_jobs']:.4f} per 1000 requests",
    ]
    return "\n".join(lines)


def _frontier_rows(frontier: list[dict[str, Any]]) -> list[str]:
    rows = [f"{'USD/h':>9}{'USD/1000':>10}{'p95 s':>8}  meets  settings"]
    rows += [
        f"{entry['cost_per_hour']:9.4f}{entry['cost_per_1000_jobs']:10.4f}{entry['p95_s']:8.2f}  "
        f"{'yes' if entry['meets'] else 'no':5}  {flags(entry['settings'])}"
        for entry in frontier
    ]
    return rows


def recommendation(report: dict[str, Any]) -> str:
    target = report["target"]["p95_s"]
    head = f"target: p95 latency <= {target:g} s; {report['simulated']} configurations simulated"
    frontier = [
        "",
        "cost/p95 frontier (no configuration is both cheaper and faster):",
        *_frontier_rows(report["frontier"]),
    ]
    if report["choice"] is None:
        best = report["best"]
        lines = [
            head,
            f"no configuration meets it; the lowest p95 found: {best['p95_s']:.2f} s with {flags(best['settings'])}",
        ]
        return "\n".join(lines + frontier)
    again = report["recheck"]
    passed = [
        f"passed over   {flags(entry['settings'])}: p95 {entry['p95_s']:.2f} s, {entry['recheck_p95_s']:.2f} s at "
        f"seed {again['seed']}"
        for entry in report["passed_over"]
    ]
    lines = [
        head,
        *passed,
        f"choice        {flags(report['choice'])}",
        f"re-checked    seed {again['seed']}: p95 {again['p95_s']:.2f} s ({again['p95_change_s']:+.2f} s), margin "
        f"{again['margin_s']:.2f} s, cost {again['cost_per_hour']:.4f} USD/h ({again['cost_change']:+.1%}): "
        f"{'holds' if again['holds'] else 'DOES NOT HOLD: nothing found holds at both seeds; simulate more hours'}",
        "",
        simulation(report["result"]),
    ]
    return "\n".join(lines + frontier)
