"""Named workflows: the production one by setting, others per request only from the allowlist."""

from __future__ import annotations

import pytest

from handler.errors import InputError, WorkflowError
from handler.generate import Generator
from handler.paths import REPO
from handler.request import Request
from handler.settings import Settings

CONV = REPO / "workflows" / "alpha_txt2img_conv.json"
PRODUCTION = REPO / "workflows" / "alpha_txt2img.json"


def test_a_bare_name_means_a_file_in_workflows() -> None:
    assert Settings.from_env({"ALPHA_WORKFLOW": "alpha_txt2img_conv"}).workflow == CONV
    listed = Settings.from_env({"ALPHA_WORKFLOW_ALLOWLIST": "alpha_txt2img, alpha_txt2img_conv"}).workflow_allowlist
    assert listed == (PRODUCTION, CONV)
    assert Settings.from_env(Settings(workflow_allowlist=listed).to_env()).workflow_allowlist == listed


def test_the_workflow_input_is_off_by_default() -> None:
    generator = Generator(Settings())
    assert generator.pick(Request(prompt="x")).name == "alpha_txt2img"
    with pytest.raises(InputError, match="'workflow' is not enabled on this worker") as caught:
        generator.pick(Request(prompt="x", workflow="alpha_txt2img_conv"))
    assert caught.value.field == "workflow"


def test_allowlisted_workflows_by_name() -> None:
    generator = Generator(Settings(workflow_allowlist=(PRODUCTION, CONV)))
    assert [w.name for w in generator.workflows] == ["alpha_txt2img", "alpha_txt2img_conv"]
    conv = generator.pick(Request(prompt="x", workflow="alpha_txt2img_conv"))
    assert conv.graph[conv.node("alpha:layer_diffuse")]["inputs"]["config"] == "SDXL, Conv Injection"
    with pytest.raises(InputError, match="unknown workflow 'other'; allowed: alpha_txt2img, alpha_txt2img_conv"):
        generator.pick(Request(prompt="x", workflow="other"))
    with pytest.raises(InputError, match="size 1000x1000") as caught:
        generator.pick(Request(prompt="x", width=1000, height=1000, workflow="alpha_txt2img_conv"))
    assert caught.value.field == "width"


def test_a_broken_allowlisted_workflow_stops_the_worker() -> None:
    broken = REPO / "workflows" / "does_not_exist.json"
    with pytest.raises(WorkflowError, match="cannot read workflow"):
        Generator(Settings(workflow_allowlist=(broken,)))
