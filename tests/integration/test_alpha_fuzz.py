"""Schemathesis fuzzes the live alpha API from its own OpenAPI document: no 5xx, and every response
(status, content type, headers, body) matches the document. The server runs real jobs on the shared
ComfyUI, at 64 px to keep the bounded run short; the token variant shows the document's security
holds too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from schemathesis.core.warnings import SchemathesisWarning

from handler.doors.alpha.server import create_app
from handler.generate import Generator
from tests.helpers import RunningComfy, ServerThread

pytestmark = pytest.mark.comfyui
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance,negative_data_rejection,ignored_auth"
)
MAX_EXAMPLES = 15
# Every warning but validation_mismatch: a schema cannot state an input image's content (README, "Layer modes"),
# so most generated layer-mode inputs are refused with 400, which is what that warning counts. The stateful phase
# still needs text jobs that succeed (its links from txt2img to the file endpoints). Everything a schema can state
# is held to the document by tests/unit/test_schema_agreement.py, which gives such inputs real images.
WARNINGS = ",".join(w.value for w in SchemathesisWarning if w is not SchemathesisWarning.VALIDATION_MISMATCH)
TOKEN = "fuzzing-token-0123456789abcdef"


@pytest.mark.parametrize("token", [None, TOKEN], ids=["open", "token"])
def test_schemathesis_finds_nothing(comfy: RunningComfy, tmp_path: Path, token: str | None) -> None:
    settings = comfy.settings.replace(serve_dir=tmp_path / "served", test_size=64, serve_token=token)
    with ServerThread(create_app(Generator(settings))) as server:
        auth = ["-H", f"Authorization: Bearer {token}"] if token else []
        cmd = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/alpha/v1/openapi.json",
            *auth,
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20261126",
            "--generation-database",
            "none",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--workers",
            "1",
            "--request-timeout",
            "300",
            "--no-color",
            "--warnings",
            WARNINGS,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    # The run really covered the API: every operation, and the links from txt2img to the file endpoints.
    assert "No issues found" in output and "Tested: 4" in output, output[-3000:]
    assert "✅ Stateful" in output, output[-3000:]
