"""Is this worker ready for jobs? ComfyUI answers, and each workflow it may run meets the contract on this
ComfyUI (``handler.workflow.online``): its nodes exist, its values are allowed (a missing checkpoint shows up as a
value ComfyUI does not offer) and the LayerDiffuse model files its nodes load are present. A layer mode's workflow
that cannot run is reported (``checks``, the start-up log) but does not make the worker unready: it serves the
rest and refuses that mode (``handler.layers``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline
from handler.errors import AlphaError, WorkflowError
from handler.workflow.graph import Workflow
from handler.workflow.online import ComfyFacts

STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Readiness:
    problems: list[str] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.problems


def mode_state(problems: list[str]) -> str:
    return "ok" if not problems else "unavailable: " + "; ".join(problems)


def check(
    workflows: Sequence[Workflow],
    client: ComfyClient,
    timeout_s: float = 10.0,
    modes: Mapping[str, Workflow] | None = None,
) -> Readiness:
    """One readiness pass over every workflow (and each layer mode's, reported in ``checks`` as ``mode_<name>``),
    bounded by timeout_s; never raises for an unready ComfyUI."""
    deadline = Deadline(timeout_s)
    checks = {"workflows": ", ".join(f"{w.name} (sha256 {w.sha256[:12]})" for w in workflows) + " loaded"}
    try:
        stats = client.system_stats(deadline).get("system", {})
        checks["comfyui"] = f"answers (ComfyUI {stats.get('comfyui_version')})"
    except AlphaError as exc:
        return Readiness([f"ComfyUI: {exc.message}"], {**checks, "comfyui": "no answer"})
    problems: list[str] = []
    try:
        facts = ComfyFacts(client, deadline)
        for workflow in workflows:
            problems += [f"{workflow.name}: {p}" for p in facts.problems(workflow.graph)]
        for mode, workflow in (modes or {}).items():
            checks[f"mode_{mode}"] = mode_state(facts.problems(workflow.graph))
    except AlphaError as exc:
        return Readiness([f"ComfyUI: {exc.message}"], {**checks, "workflow_check": "no answer"})
    checks["workflow_check"] = "ok" if not problems else f"{len(problems)} problem(s)"
    return Readiness(problems, checks)


def require(
    workflows: Sequence[Workflow],
    client: ComfyClient,
    timeout_s: float = STARTUP_TIMEOUT_S,
    modes: Mapping[str, Workflow] | None = None,
) -> Readiness:
    """For startup: raise WorkflowError listing every problem, so a worker that cannot serve takes no job; else
    the pass's result (its ``checks`` say which layer modes can run)."""
    result = check(workflows, client, timeout_s, modes)
    if not result.ready:
        raise WorkflowError("the workflow cannot run on this ComfyUI: " + "; ".join(result.problems))
    return result
