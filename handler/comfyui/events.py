"""ComfyUI's events and history entries, mapped to our results and errors (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handler.errors import ExecutionError

MAX_MESSAGE_CHARS = 500


def _short(value: Any) -> str:
    text = str(value).strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."


def execution_error(data: dict[str, Any]) -> ExecutionError:
    """From an ``execution_error`` event; never copies current_inputs or the traceback."""
    node_id, node_type = data.get("node_id"), data.get("node_type")
    exc_type = data.get("exception_type")
    return ExecutionError(
        f"node {node_id} ({node_type}) failed: {exc_type}: {_short(data.get('exception_message'))}",
        node_id=None if node_id is None else str(node_id),
        node_type=node_type,
        exception_type=exc_type,
    )


def validation_error(body: dict[str, Any]) -> ExecutionError:
    """From /prompt's ``node_errors`` (HTTP 400, or a 200 that still lists errors)."""
    for node_id, entry in (body.get("node_errors") or {}).items():
        errors = entry.get("errors") or [{}]
        first = errors[0]
        detail = ": ".join(_short(x) for x in (first.get("message"), first.get("details")) if x)
        return ExecutionError(
            f"ComfyUI rejected the workflow: node {node_id} ({entry.get('class_type')}): {detail}",
            node_id=str(node_id),
            node_type=entry.get("class_type"),
            exception_type=first.get("type"),
        )
    error = body.get("error") or {}
    message = error.get("message") if isinstance(error, dict) else error
    return ExecutionError(f"ComfyUI rejected the workflow: {_short(message)}")


@dataclass
class Completion:
    """What following one prompt learned, with ComfyUI's own timestamps (ms)."""

    prompt_id: str
    outputs: dict[str, Any]
    started_ms: int | None = None
    finished_ms: int | None = None
    reconnects: int = 0

    @property
    def execution_ms(self) -> int | None:
        if self.started_ms is None or self.finished_ms is None:
            return None
        return self.finished_ms - self.started_ms


def raise_for_failure(kind: str, data: dict[str, Any], prompt_id: str) -> None:
    """Raise for an ``execution_error``/``execution_interrupted`` event (websocket or history)."""
    if kind == "execution_error":
        raise execution_error(data)
    if kind == "execution_interrupted":
        raise ExecutionError(
            f"prompt {prompt_id} was interrupted at node {data.get('node_id')}",
            node_id=data.get("node_id"),
            node_type=data.get("node_type"),
        )


def completion_from_history(prompt_id: str, entry: dict[str, Any]) -> Completion | None:
    """A finished history entry as a Completion; raises for a failed one; None if unfinished."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    stamps = {name: data.get("timestamp") for name, data in messages if isinstance(data, dict)}
    for name, data in messages:
        raise_for_failure(name, data, prompt_id)
    if not status.get("completed"):
        return None
    return Completion(
        prompt_id, entry.get("outputs") or {}, stamps.get("execution_start"), stamps.get("execution_success")
    )
