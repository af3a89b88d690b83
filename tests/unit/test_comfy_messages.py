"""ComfyUI's error payloads become structured errors without tensors or tracebacks."""

from __future__ import annotations

import pytest

from handler.comfyui.events import completion_from_history, execution_error, validation_error
from handler.errors import ExecutionError

EXECUTION_ERROR = {
    "prompt_id": "p1",
    "node_id": "8",
    "node_type": "LayeredDiffusionDecodeRGBA",
    "executed": ["1"],
    "exception_message": "'JoinImageWithAlpha' object has no attribute 'join_image_with_alpha'",
    "exception_type": "AttributeError",
    "traceback": ["SECRET-TRACEBACK"],
    "current_inputs": {"images": ["TENSOR-DUMP"]},
    "current_outputs": [],
}


def test_execution_error_names_the_node_and_drops_inputs() -> None:
    err = execution_error(EXECUTION_ERROR)
    assert err.code == "execution_error"
    assert (err.node_id, err.node_type, err.exception_type) == ("8", "LayeredDiffusionDecodeRGBA", "AttributeError")
    assert "node 8 (LayeredDiffusionDecodeRGBA) failed: AttributeError" in err.message
    body = str(err.to_body()) + str(err)
    assert "TENSOR-DUMP" not in body and "SECRET-TRACEBACK" not in body


def test_long_exception_messages_are_cut() -> None:
    err = execution_error({**EXECUTION_ERROR, "exception_message": "x" * 5000})
    assert len(err.message) < 700


def test_validation_error_from_node_errors() -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        "node_errors": {
            "1": {
                "class_type": "CheckpointLoaderSimple",
                "dependent_outputs": ["9"],
                "errors": [
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": "ckpt_name: 'x.safetensors' not in []",
                        "extra_info": {"received_value": "x.safetensors"},
                    }
                ],
            }
        },
    }
    err = validation_error(body)
    assert (err.node_id, err.node_type, err.exception_type) == ("1", "CheckpointLoaderSimple", "value_not_in_list")
    assert "node 1 (CheckpointLoaderSimple): Value not in list: ckpt_name" in err.message


def test_validation_error_without_node_errors() -> None:
    err = validation_error({"error": {"type": "invalid_prompt", "message": "Cannot execute because ..."}})
    assert err.message == "ComfyUI rejected the workflow: Cannot execute because ..."


def test_history_entries() -> None:
    ok = {
        "status": {
            "completed": True,
            "status_str": "success",
            "messages": [
                ["execution_start", {"prompt_id": "p", "timestamp": 1000}],
                ["execution_success", {"prompt_id": "p", "timestamp": 3500}],
            ],
        },
        "outputs": {"9": {"images": [{"filename": "a.png"}]}},
    }
    done = completion_from_history("p", ok)
    assert done is not None and done.execution_ms == 2500 and done.outputs["9"]["images"][0]["filename"] == "a.png"
    assert completion_from_history("p", {"status": {"completed": False, "messages": []}}) is None
    failed = {"status": {"completed": False, "messages": [["execution_error", EXECUTION_ERROR]]}}
    with pytest.raises(ExecutionError, match="node 8"):
        completion_from_history("p", failed)
