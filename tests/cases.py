"""Input cases shared by the tests of both doors (RunPod and the local alpha API)."""

from __future__ import annotations

from typing import Any

# (job input, words the error message must contain); each is refused before ComfyUI sees a job.
BAD_INPUTS: list[tuple[Any, str]] = [
    ({}, "'prompt' is required"),
    ({"prompt": ""}, "'prompt' must not be empty"),
    ({"prompt": 42}, "'prompt' must be a string"),
    ({"prompt": "x", "seed": "7"}, "'seed' must be an integer"),
    ({"prompt": "x", "seed": True}, "'seed' must be an integer"),
    ({"prompt": "x", "width": 1000, "height": 1000}, "size 1000x1000"),
    ({"prompt": "x", "width": 1024}, "'height' is missing"),
    ({"prompt": "x", "sampler": "euler"}, "unknown field 'sampler'"),
]
