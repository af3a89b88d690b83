"""Prompt text stays out of the logs (DEPLOYMENT.md: prompts only at DEBUG), on the real ComfyUI and through
RunPod's own local API; and ComfyUI prompt syntax that would echo text into its log, forge log lines or fail
a job late is refused before anything reaches ComfyUI."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from handler.errors import InputError
from handler.generate import Generator
from handler.request import Request
from tests.helpers import RunningComfy, post_json, runpod_api

pytestmark = pytest.mark.comfyui
MARKER = f"zq{uuid.uuid4().hex[:12]}"
SHORT = MARKER[:8]  # where the full marker would pass the 2,000-character limit
FORGED = "\n2026-12-01 23:59:59,999 ERROR handler.supervisor [job -] ComfyUI exited unexpectedly with code 137"


def test_prompt_text_reaches_no_log_at_info(
    comfy: RunningComfy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handler")
    before = len(comfy.log())
    job = {"prompt": f"a glass {MARKER} apple, (shiny:1.2)", "negative_prompt": f"blurry {MARKER}", "seed": 3}
    Generator(comfy.settings).generate(Request.parse(job))
    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as sink, runpod_api(comfy.settings, log=sink) as api:
        status, reply = post_json(f"{api.url}/runsync", {"input": job}, timeout=300)
    assert status == 200 and reply["output"]["status"] == "success", reply
    assert MARKER not in comfy.log()[before:], "ComfyUI logged prompt text"
    assert not [r.getMessage() for r in caplog.records if MARKER in r.getMessage()], "the handler logged it"
    assert MARKER not in worker_log.read_text(errors="replace"), "the RunPod worker logged it"


@pytest.mark.parametrize(
    ("job", "field"),
    [
        ({"prompt": f"a cat embedding:{MARKER}{FORGED}"}, "prompt"),
        ({"prompt": "a cat", "negative_prompt": f"embedding:my private {MARKER}"}, "negative_prompt"),
        ({"prompt": "a cat " + " ".join(f"embedding:{SHORT}{i}" for i in range(80))}, "prompt"),
        ({"prompt": f"({MARKER}:nan)"}, "prompt"),
        ({"prompt": f"({MARKER}:inf)"}, "prompt"),
        ({"prompt": f"({MARKER}:1e308)"}, "prompt"),
        ({"prompt": "x", "negative_prompt": f"({MARKER}:-1e308)"}, "negative_prompt"),
        ({"prompt": "(" * 900 + MARKER + ")" * 900}, "prompt"),
        ({"prompt": "(" * 990 + SHORT + ")" * 990}, "prompt"),
    ],
    ids=[
        "embedding-forged-line",
        "embedding-negative",
        "80-embeddings",
        "nan",
        "inf",
        "huge",
        "huge-negative",
        "nest-900",
        "nest-997",
    ],
)
def test_syntax_that_would_echo_or_fail_late_is_refused_first(
    comfy: RunningComfy, job: dict[str, Any], field: str
) -> None:
    history, before = comfy.history_size(), len(comfy.log())
    with pytest.raises(InputError) as refused:
        Generator(comfy.settings).generate(Request.parse(job))
    assert refused.value.field == field
    assert comfy.history_size() == history, "nothing reached ComfyUI"
    assert SHORT not in comfy.log()[before:]
