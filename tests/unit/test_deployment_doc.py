"""DEPLOYMENT.md's troubleshooting table quotes log lines and messages: each quote must still be in the code."""

from __future__ import annotations

import re

import pytest

from handler.paths import REPO

DOC = (REPO / "DEPLOYMENT.md").read_text()
CODE = "\n".join(
    path.read_text()
    for path in [*sorted((REPO / "handler").rglob("*.py")), *sorted((REPO / "custom_nodes").rglob("*.py"))]
)

# Fixed parts of the quoted lines, as they appear in the source (format strings cut at placeholders).
QUOTED = [
    "invalid setting: ",
    "cannot start: %s",
    "no ComfyUI at ",
    "before it was ready",
    "was not ready within ",
    "ComfyUI answers but has no ",
    "(custom nodes failed to load?)",
    "worker not started: %s",
    "ComfyUI exited unexpectedly with code %s; stopping the worker so that the ",
    "container restarts instead of hanging",
    "job failed: %s",
    "job failed with an unexpected error",
    "ComfyUI rejected the workflow: node ",
    "LayerDiffuse did not take effect",
    "not RGBA: the workflow lost the alpha channel",
    "websocket lost while following prompt %s (%s); reconnecting",
    "could not %s prompt %s: %s",
    "HTTP {status}: the server refused access; ",
    "the server sent an HTML page, not the file (a login page?); ",
    "does not exist; fetching without a %s token",
    "; the download was deleted",
    "the file was not written by this fetch, ",
    "gave up after {attempts} attempts; last: ",
    "the alpha API binds %s, so other hosts can reach it",
    "converted %d legacy lora patches to LoRAAdapter",
    "ComfyUI ready on port %d after %.1f s",
    "RunPod worker starting (workflow %s, sha256 %s)",
    "starting ComfyUI: %s",
    "GPU preflight failed: ",
    "CUDA is not usable (",
    "a test computation on the GPU failed: ",
    "the workflow cannot run on this ComfyUI: ",
    "is not available in ComfyUI",
    "(is the model file missing?)",
    "model file {folder}/{name} is missing",
    "layer mode %s: %s",
    "unavailable: ",
    "cannot run on this worker: ",
    "is turned off on this worker (",
    "warm-up done in %d ms",
    "websocket silent for %.0f s and a ping unanswered while following prompt %s; ",
    "/history did not answer while following prompt %s: %s",
    "job cancelled by RunPod; stopping its prompt",
    "the client went away; stopping its prompt",
    "prompt %s dequeued and interrupted",
    "prompt %s has not ended yet; its outputs are removed once it has",
    "prompt %s has ended; its late outputs are removed",
    "prompt %s failed after %d ms (%s); cancelling it",
    "pixels (threshold {percent(max_uniform)}%, ALPHA_MAX_UNIFORM_ALPHA): ",
    " as base64); the limit is {limit} bytes ",
    "every attempt failed the transparency check ({len(tried)} seeds): ",
    "attempt %d (seed %d) failed the transparency check; trying a new seed",
    "the upload of {where} failed: ",
]


def doc_form(fragment: str) -> str:
    """The fragment as the document shows it: placeholders become what they stand for, so only literal text
    between them is compared."""
    return re.split(r"%[-\d.]*[sdf]|\{[^}]*\}", fragment)[0].rstrip()


@pytest.mark.parametrize("fragment", QUOTED)
def test_quoted_messages_exist_in_code_and_doc(fragment: str) -> None:
    assert fragment in CODE, f"the code no longer says {fragment!r}: update DEPLOYMENT.md"
    shown = doc_form(fragment)
    assert shown and shown in DOC, f"DEPLOYMENT.md does not quote {shown!r}"


def test_settings_table_is_last_and_stale_statements_are_gone() -> None:
    headings = re.findall(r"^## (.+)$", DOC, flags=re.MULTILINE)
    assert headings[-1] == "Settings"
    assert DOC.rstrip().splitlines()[-1].startswith("| `")
    for stale in ("not bake model weights yet", "fetcher come next", "first version of the deployment guide"):
        assert stale not in DOC
