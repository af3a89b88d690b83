"""The package's rooms (README, "Where code lives"): every module has one, imports point inward, no cycles.

Read with ``ast``, so function-level imports count: a cycle or an outward import hidden in a function is
caught too."""

from __future__ import annotations

import pytest

from tests import imports

# Rank of each room: a module may import its own room or a lower rank, never a higher one.
BOTTOM, ADAPTERS, CORE, OUTER = 0, 1, 2, 3
CORE_MODULES = {
    "handler.generate",
    "handler.attempts",
    "handler.readiness",
    "handler.supervisor",
    "handler.gpucheck",
    "handler.startgate",
    "handler.layers",
    "handler.results",
}
BOTTOM_MODULES = {
    "handler",
    "handler.paths",
    "handler.settings",
    "handler.setting_types",
    "handler.setting_specs",
    "handler.errors",
    "handler.deadline",
    "handler.logs",
    "handler.png",
    "handler.asset",
    "handler.image_input",
    "handler.image_container",
    "handler.image_fit",
    "handler.pool",
    "handler.request",
    "handler.fields",
    "handler.testmodels",
    "handler.prompt_syntax",
}


def room(module: str) -> tuple[str, int] | None:
    """(room, rank) of a module, or None for an entry point (``__main__``), which nothing may import."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return None
    if module in BOTTOM_MODULES:
        return "bottom", BOTTOM
    if module in CORE_MODULES:
        return "core", CORE
    if len(parts) > 1 and parts[1] in ("comfyui", "workflow"):
        return parts[1], ADAPTERS
    if len(parts) > 1 and parts[1] == "models":
        return "models", OUTER
    if len(parts) > 1 and parts[1] == "acceptance":
        # A deployed endpoint, from outside: a tool, which nothing on a job's path may import.
        return "acceptance", OUTER
    if len(parts) > 1 and parts[1] == "capacity":
        # An endpoint's sizing (the capacity planner): a tool like the acceptance run, in a room of its own.
        return "capacity", OUTER
    if len(parts) > 2 and parts[1] == "doors":
        # Each door is a room of its own; the doors package's own modules serve both.
        return ("doors." + parts[2] if parts[2] not in ("threads", "__init__") else "doors"), OUTER
    if module == "handler.doors":
        return "doors", OUTER
    raise AssertionError(f"{module} has no room: place it (README, 'Where code lives') and list it here")


def test_every_module_has_a_room() -> None:
    for module in imports.modules():
        room(module)


def test_no_import_cycles() -> None:
    assert imports.cycles(imports.graph()) == []


def outward(importer: str, imported: str) -> str | None:
    """Why this import breaks the rule, or None."""
    target = room(imported)
    if target is None:
        return "imports an entry point"
    source = room(importer)
    if source is None:
        return None  # entry points may import anything
    if target[1] > source[1]:
        return f"points outward ({source[0]} -> {target[0]})"
    if source[1] == OUTER and target[1] == OUTER and "doors" not in (source[0], target[0]) and source != target:
        return f"crosses between outer rooms ({source[0]} -> {target[0]})"
    if source[1] == OUTER and source[0] == "doors" and target[0].startswith("doors."):
        return f"shared door code depends on one door ({source[0]} -> {target[0]})"
    return None


def test_imports_point_inward() -> None:
    broken = [
        f"{importer} -> {imported}: {why}"
        for importer, targets in imports.graph().items()
        for imported in sorted(targets)
        if (why := outward(importer, imported))
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("importer", "imported", "expected"),
    [
        ("handler.generate", "handler.doors.alpha.server", "points outward"),
        ("handler.settings", "handler.models.testmodels", "points outward"),
        ("handler.doors.alpha.server", "handler.doors.runpod.worker", "crosses between outer rooms"),
        ("handler.doors.runpod.worker", "handler.models.fetch", "crosses between outer rooms"),
        ("handler.doors.runpod.worker", "handler.acceptance.checks", "crosses between outer rooms"),
        ("handler.generate", "handler.acceptance.report", "points outward"),
        ("handler.acceptance.checks", "handler.png", None),
        ("handler.generate", "handler.capacity.engine", "points outward"),
        ("handler.doors.runpod.worker", "handler.capacity.plan", "crosses between outer rooms"),
        ("handler.capacity.plan", "handler.acceptance.report", "crosses between outer rooms"),
        ("handler.capacity.plan", "handler.capacity.engine", None),
        ("handler.workflow.check", "handler.workflow.__main__", "imports an entry point"),
        ("handler.doors.alpha.server", "handler.generate", None),
        ("handler.__main__", "handler.doors.runpod.worker", None),
    ],
)
def test_the_rule_refuses_what_it_should(importer: str, imported: str, expected: str | None) -> None:
    why = outward(importer, imported)
    assert (why is None) if expected is None else (why is not None and expected in why)


def test_the_cycle_finder_sees_a_cycle_through_three_modules() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert imports.cycles(edges) == [["a", "b", "c"]]
