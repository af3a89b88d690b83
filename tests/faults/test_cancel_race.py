"""A job that ends early leaves no file, even when its prompt is already in the save node: ComfyUI's interrupt
stops a prompt only between nodes, so a save that already runs still writes after the interrupt (the review's
repro: a cached prompt, then a client that disconnects within milliseconds). The tests strike on a node's own
``executing`` event, read from the job's real socket: on the save node itself (at test sizes the save is
quick, so these guard the wait rather than reproduce the race), and on the node before it with ComfyUI frozen
(deterministic: the interrupt cannot arrive, and the prompt saves its image after the job has ended)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from handler.comfyui.client import CANCEL_TIMEOUT_S
from handler.deadline import Deadline
from handler.errors import JobCancelled, JobTimeout
from handler.generate import Generator
from handler.request import Request
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.conftest import running_comfy
from tests.faults.watch import LOAD_SLACK_S, Watched, leftovers, queue, wait_idle
from tests.helpers import RunningComfy, free_port

pytestmark = pytest.mark.comfyui


def save_node(settings: Settings) -> str:
    return Workflow.load(settings.workflow).node("alpha:output")


def node_before_save(settings: Settings) -> str:
    """The node whose image the save node writes (the RGBA decode)."""
    workflow = Workflow.load(settings.workflow)
    return str(workflow.graph[workflow.node("alpha:output")]["inputs"]["images"][0])


@pytest.fixture
def own_comfy(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningComfy]:
    settings = test_settings.replace(comfyui_port=free_port(), output_dir=tmp_path_factory.mktemp("race-output"))
    with running_comfy(settings, tmp_path_factory, "race") as running:
        yield running


@pytest.mark.parametrize("way", ["cancel", "deadline"])
def test_a_job_stopped_while_its_image_is_saved_leaves_no_file(comfy: RunningComfy, way: str) -> None:
    """The cancel event is how a RunPod stop and a departed alpha API client end a job; the deadline, a
    timeout. Either way the job waits for ComfyUI to finish the prompt, then sweeps."""
    cancel, deadline = threading.Event(), Deadline(300)

    def strike() -> None:
        if way == "cancel":
            cancel.set()
        else:
            deadline.at = time.monotonic()

    client = Watched(comfy.settings.comfyui_url, comfy.settings, node=save_node(comfy.settings), strike=strike)
    # 512 px: a save long enough (tens of ms) that a sweep right after the interrupt would come too early.
    generator = Generator(comfy.settings.replace(test_size=512), client=client)
    with pytest.raises(JobCancelled if way == "cancel" else JobTimeout):
        generator.generate(Request(prompt="a glass apple", seed=11), cancel=cancel, deadline=deadline)
    assert client.struck == 1
    assert leftovers(comfy.settings) == [], "swept once the prompt had ended"
    wait_idle(comfy.client)
    assert leftovers(comfy.settings) == []


def test_a_job_cancelled_before_it_was_submitted_sends_nothing(comfy: RunningComfy) -> None:
    cancel = threading.Event()
    cancel.set()
    before = comfy.history_size()
    with pytest.raises(JobCancelled, match="before its prompt was submitted"):
        Generator(comfy.settings).generate(Request(prompt="a glass apple", seed=12), cancel=cancel)
    assert comfy.history_size() == before and queue(comfy.client) == ([], [])


def test_a_save_after_a_frozen_comfyui_resumes_is_swept_by_the_next_job(
    own_comfy: RunningComfy, caplog: pytest.LogCaptureFixture, record_property: Callable[[str, object], None]
) -> None:
    """ComfyUI frozen in the node before the save: the cancel cannot reach it, so the job cannot wait for the
    prompt to end; it ends on time. Once ComfyUI runs again the prompt goes on and saves its image (the
    interrupt never arrived), and the next job removes that file."""
    caplog.set_level(logging.INFO, logger="handler")
    proc = own_comfy.process.proc
    assert proc is not None
    cancel = threading.Event()
    struck: list[float] = []

    def strike() -> None:
        os.killpg(proc.pid, signal.SIGSTOP)
        struck.append(time.monotonic())
        cancel.set()

    settings = own_comfy.settings
    client = Watched(settings.comfyui_url, settings, node=node_before_save(settings), strike=strike)
    generator = Generator(settings, client=client)
    try:
        # ComfyUI stays frozen until the job has ended: the cancel's request cannot be answered.
        with pytest.raises(JobCancelled):
            generator.generate(Request(prompt="a glass apple", seed=13), cancel=cancel)
        ended = time.monotonic() - struck[0]
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    record_property("ended_after_strike_s", round(ended, 2))
    # The job gave its cancel the whole timeout (nothing answered), then ended without waiting for the prompt.
    assert CANCEL_TIMEOUT_S <= ended < CANCEL_TIMEOUT_S + LOAD_SLACK_S, f"the job ended {ended:.1f} s after the strike"
    # The prompt goes on to its save: as long as the handler would let a prompt run, a job's deadline.
    wait_idle(own_comfy.client, settings.job_timeout_s + LOAD_SLACK_S)
    late = leftovers(settings)
    client.strike = lambda: None
    generator.generate(Request(prompt="a pear", seed=14))
    assert late, "the prompt saved its image after the job had ended"
    assert leftovers(settings) == [], "the next job removes it"
    assert any("has not ended yet; its outputs are removed once it has" in r.getMessage() for r in caplog.records)
