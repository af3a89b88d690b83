"""Fault injection against the real ComfyUI with the test models. Each test asserts the error code and the
time it took, and that nothing is left behind (output files, websockets, threads).

Jobs here run many sampler steps so that a fault lands mid-sampling; tests that kill or freeze ComfyUI get
a ComfyUI of their own, the others share the session's (through tests/faults/proxy.py where the wire
must break)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runpod.serverless.modules.rp_job import run_job
from runpod.serverless.modules.rp_scale import JobScaler

from handler.comfyui.client import CANCEL_TIMEOUT_S, ComfyClient
from handler.comfyui.follow import RECONNECT_BACKOFF_S, TICK_S
from handler.deadline import Deadline
from handler.doors.alpha.server import create_app
from handler.doors.runpod.worker import make_handler
from handler.errors import ExecutionError
from handler.generate import Generator
from handler.request import Request
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.conftest import running_comfy
from tests.faults.proxy import Proxy
from tests.faults.watch import (
    LOAD_SLACK_S,
    PROMPT_START,
    STOP_TAIL_S,
    TOLD_WITHIN_S,
    Job,
    Watched,
    job_bound,
    leftovers,
    status_of,
    wait_for,
    wait_idle,
)
from tests.helpers import RunningComfy, ServerThread, assert_error, free_port, rgba

pytestmark = pytest.mark.comfyui
LONG_STEPS = 60  # several seconds of sampling on the CPU: room to strike mid-job
# A ComfyUI killed outright refuses every reconnect: the job gives up after the last backoff.
GIVES_UP_WITHIN_S = sum(RECONNECT_BACKOFF_S) + LOAD_SLACK_S


@pytest.fixture
def own_comfy(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningComfy]:
    settings = test_settings.replace(
        comfyui_port=free_port(), output_dir=tmp_path_factory.mktemp("own-output"), test_steps=LONG_STEPS
    )
    with running_comfy(settings, tmp_path_factory, "own") as running:
        yield running


def test_sigkill_mid_sampling_fails_fast_and_asks_for_a_new_worker(
    own_comfy: RunningComfy, record_property: Callable[[str, object], None]
) -> None:
    client = Watched.of(own_comfy.settings)
    job = Job(Generator(own_comfy.settings, client=client), {"prompt": "a lamp", "seed": 1}).start()
    client.wait_reached(job_bound(own_comfy.settings))
    assert own_comfy.process.proc is not None
    killed = time.monotonic()
    os.killpg(own_comfy.process.proc.pid, signal.SIGKILL)
    result = job.wait()
    took = job.finished - killed
    record_property("noticed_after_s", round(took, 2))
    assert_error(result, "comfyui_unavailable", None)
    assert result.get("stopPod") is True, "refresh_worker: RunPod replaces this worker"
    assert took < GIVES_UP_WITHIN_S, f"noticed after {took:.1f} s"
    assert leftovers(own_comfy.settings) == []


def test_sigstop_times_out_at_the_deadline_then_recovers(
    own_comfy: RunningComfy, record_property: Callable[[str, object], None]
) -> None:
    deadline_s = 15.0
    settings = own_comfy.settings.replace(job_timeout_s=deadline_s)
    # Frozen once the prompt runs: under load the sampler may start only after a deadline this short.
    client = Watched.of(settings, PROMPT_START)
    job = Job(Generator(settings, client=client), {"prompt": "a kettle", "seed": 2}).start()
    stuck = client.wait_reached(deadline_s + LOAD_SLACK_S)
    assert own_comfy.process.proc is not None
    os.killpg(own_comfy.process.proc.pid, signal.SIGSTOP)
    frozen = time.monotonic() - job.started
    try:
        result = job.wait()
    finally:
        os.killpg(own_comfy.process.proc.pid, signal.SIGCONT)
    took = job.finished - job.started
    record_property("frozen_after_s", round(frozen, 2))
    record_property("failed_after_s", round(took, 2))
    # The job's clock starts after job.started: a freeze before deadline_s by this clock came before the deadline.
    assert frozen < deadline_s, f"the prompt started {frozen:.1f} s in: past the deadline, nothing froze mid-job"
    assert_error(result, "timeout", None)
    assert result["error"].startswith("timeout: deadline of 15 s passed"), result
    assert result.get("stopPod") is None, "a hung ComfyUI is not a dead one"
    # Not before the deadline; after it, only the cancel that a frozen ComfyUI never answers (its first request
    # times out, and the job sends no second).
    assert deadline_s <= took < deadline_s + CANCEL_TIMEOUT_S + LOAD_SLACK_S, f"failed after {took:.1f} s"
    # ComfyUI could not be told while frozen; the next job tells it first, then runs normally.
    fast = own_comfy.settings.replace(test_steps=2)
    after = Job(Generator(fast, client=client), {"prompt": "a cup", "seed": 3}).start().wait()
    assert after.get("output", {}).get("status") == "success", after
    stuck_status = status_of(own_comfy.client, stuck)
    assert stuck_status.get("completed") is not True, "the frozen prompt was interrupted, not finished"
    assert "execution_interrupted" in json.dumps(stuck_status) or not stuck_status
    assert leftovers(own_comfy.settings) == []


@pytest.fixture
def proxied(comfy: RunningComfy) -> Iterator[tuple[Proxy, Generator, Watched]]:
    settings = comfy.settings.replace(test_steps=12)
    with Proxy(comfy.settings.comfyui_port) as proxy:
        client = Watched(proxy.url, settings, http_timeout_s=3.0)
        yield proxy, Generator(settings, client=client), client
        client.close()


def test_websocket_cut_while_the_job_finishes_still_succeeds(
    comfy: RunningComfy, proxied: tuple[Proxy, Generator, Watched], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, generator, client = proxied
    caplog.set_level(logging.INFO, logger="handler")
    job = Job(generator, {"prompt": "a vase", "seed": 4}).start()
    prompt_id = client.wait_reached(job_bound(generator.settings))
    proxy.refuse = True
    proxy.cut()
    # The job finishes while the handler cannot reach ComfyUI at all: it completes, and a reconnect after that
    # is refused (they come at most the longest backoff apart, each refused at once).
    wait_for(
        lambda: status_of(comfy.client, prompt_id).get("completed") is True,
        job_bound(generator.settings),
        "the prompt completed",
    )
    refused = proxy.accepted
    wait_for(
        lambda: proxy.accepted > refused,
        RECONNECT_BACKOFF_S[-1] + LOAD_SLACK_S,
        "a reconnect refused after the prompt completed",
    )
    proxy.refuse = False
    result = job.wait()
    assert result["output"]["status"] == "success", result
    assert result["output"]["info"]["prompt_id"] == prompt_id
    assert "websocket lost while following prompt" in caplog.text
    proxy.wait_open_at_most(1)  # the job's websocket is closed (at most a pooled HTTP connection stays)
    assert leftovers(comfy.settings) == []


def test_stalled_websocket_is_detected_and_replaced(
    comfy: RunningComfy, proxied: tuple[Proxy, Generator, Watched], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, generator, client = proxied
    caplog.set_level(logging.INFO, logger="handler")
    job = Job(generator, {"prompt": "a bell", "seed": 5}).start()
    client.wait_reached(job_bound(generator.settings))
    proxy.stall()  # the open websocket freezes; new connections flow
    result = job.wait()
    assert result["output"]["status"] == "success", result
    assert "a ping unanswered while following prompt" in caplog.text
    assert leftovers(comfy.settings) == []


def test_a_replacement_websocket_is_closed_when_the_job_fails_after_it(
    comfy: RunningComfy, proxied: tuple[Proxy, Generator, Watched], caplog: pytest.LogCaptureFixture
) -> None:
    """The websocket is cut and replaced, then the job times out: the replacement is closed too, not left to the
    garbage collector (the job's own socket was the only one closed before)."""
    proxy, generator, client = proxied
    caplog.set_level(logging.INFO, logger="handler")
    deadline_s = 8.0
    client.node = PROMPT_START  # cut once the prompt runs: under load the sampler may start after the deadline
    slow = Generator(generator.settings.replace(test_steps=LONG_STEPS, job_timeout_s=deadline_s), client=client)
    job = Job(slow, {"prompt": "a kettle", "seed": 6}).start()
    client.wait_reached(deadline_s + LOAD_SLACK_S)
    proxy.cut()  # the job's websocket goes; a new one is opened through the proxy
    result = job.wait()
    assert_error(result, "timeout", None)
    assert caplog.text.count("websocket lost while following prompt") == 1, "one replacement"
    assert proxy.accepted >= 2
    proxy.wait_open_at_most(1)  # only a pooled HTTP connection may stay open
    assert leftovers(comfy.settings) == []


def test_runpod_stop_signal_interrupts_the_prompt_then_the_next_job_succeeds(
    comfy: RunningComfy, caplog: pytest.LogCaptureFixture, record_property: Callable[[str, object], None]
) -> None:
    caplog.set_level(logging.INFO, logger="handler")
    settings = comfy.settings.replace(test_steps=LONG_STEPS)
    client = Watched.of(settings)
    scaler = JobScaler({"handler": make_handler(Generator(settings, client=client))})
    job = {"id": "to-stop", "input": {"prompt": "a clock", "seed": 6}}

    async def scenario() -> tuple[float, str]:
        task = asyncio.create_task(run_job(scaler.config["handler"], job))
        scaler.jobs_tasks[job["id"]] = task
        prompt_id = await asyncio.to_thread(client.wait_reached, job_bound(settings))
        stopped_at = time.time()
        assert await scaler.stop_job(job["id"])  # what RunPod's stop channel does
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(wait_idle, comfy.client, TICK_S + STOP_TAIL_S + LOAD_SLACK_S)
        return stopped_at, prompt_id

    threads = threading.active_count()
    stopped_at, prompt_id = asyncio.run(scenario())
    told = [r.created for r in caplog.records if r.getMessage() == f"prompt {prompt_id} dequeued and interrupted"]
    assert told, "the handler interrupted the prompt"
    record_property("told_after_s", round(told[0] - stopped_at, 2))
    assert 0 <= told[0] - stopped_at < TOLD_WITHIN_S, f"the prompt was stopped {told[0] - stopped_at:.1f} s after"
    status = status_of(comfy.client, prompt_id)
    assert status.get("completed") is not True and "execution_interrupted" in json.dumps(status)
    quick = Generator(comfy.settings, client=client)
    assert rgba(quick.generate(Request(prompt="a clock", seed=7)).image).shape[-1] == 4
    # The job's thread ends once its prompt has ended (STOP_TAIL_S after the stop at most), long before now.
    wait_for(lambda: threading.active_count() <= threads, LOAD_SLACK_S, "the job thread ended")
    assert leftovers(comfy.settings) == []


def test_a_node_failure_is_a_structured_execution_error(comfy: RunningComfy) -> None:
    """A size that is not a multiple of 64, sent past validation: LayerDiffuse's decoder refuses it."""
    graph = json.loads(Path(comfy.settings.workflow).read_text())
    latent = next(i for i, n in graph.items() if n.get("_meta", {}).get("title") == "alpha:latent")
    sampler = next(i for i, n in graph.items() if n.get("_meta", {}).get("title") == "alpha:sampler")
    graph[latent]["inputs"].update(width=328, height=328)
    graph[sampler]["inputs"]["steps"] = 1
    broken = Workflow(
        name="broken",
        sha256="0" * 64,
        graph=graph,
        markers=Workflow.load(comfy.settings.workflow).markers,
        defaults={"negative_prompt": "", "width": 328, "height": 328},
        sizes=((328, 328),),
    )
    # Not in test mode, so the 328 px size reaches ComfyUI as it is (the models are the test ones all the same).
    generator = Generator(comfy.settings.replace(test_models=False), workflow=broken, client=comfy.client)
    result = Job(generator, {"prompt": "a comb", "seed": 8}).start().wait()
    output = assert_error(result, "execution_error", None)
    decoder = next(i for i, n in graph.items() if n["class_type"] == "LayeredDiffusionDecodeRGBA")
    assert (output["node_id"], output["node_type"], output["exception_type"]) == (
        decoder,
        "LayeredDiffusionDecodeRGBA",
        "AssertionError",
    )
    assert "is not multiple of 64" in output["message"]
    assert "Traceback" not in json.dumps(result) and "tensor(" not in json.dumps(result)
    assert result.get("stopPod") is None
    with pytest.raises(ExecutionError):  # the core raises the same error for the other door
        generator.generate(Request(prompt="a comb", seed=8))
    assert leftovers(comfy.settings) == []


def test_a_queued_prompt_with_node_errors_is_an_error_and_is_withdrawn(comfy: RunningComfy) -> None:
    """ComfyUI answers 200 and queues the valid part when one of several outputs is broken; that is an
    error for us, and the queued part must not run."""
    graph = json.loads(Path(comfy.settings.workflow).read_text())
    graph["97"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}}
    graph["98"] = {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["97", 2]}}
    graph["99"] = {"class_type": "SaveImage", "inputs": {"images": ["98", 0], "filename_prefix": "alpha_broken"}}
    client = ComfyClient(comfy.settings.comfyui_url)
    before = comfy.history_size()
    with pytest.raises(ExecutionError) as caught:
        client.submit(graph, client.new_client_id(), Deadline(30))
    # This graph gets HTTP 200 with node_errors from the pinned ComfyUI (checked by hand), not a 400.
    assert (caught.value.node_id, caught.value.node_type, caught.value.exception_type) == (
        "97",
        "CheckpointLoaderSimple",
        "value_not_in_list",
    )
    assert "ComfyUI rejected the workflow: node 97" in caught.value.message
    wait_idle(comfy.client)  # the withdrawn part stops as a cancelled job's prompt does
    assert comfy.history_size() - before <= 1  # at most the withdrawn prompt, never a finished image
    assert list(comfy.settings.effective_output_dir.glob("alpha_broken*")) == []
    client.close()


def test_an_alpha_api_client_that_goes_away_stops_its_prompt(
    comfy: RunningComfy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    record_property: Callable[[str, object], None],
) -> None:
    caplog.set_level(logging.INFO, logger="handler")
    settings = comfy.settings.replace(test_steps=LONG_STEPS, serve_dir=tmp_path / "served")
    client = Watched.of(settings)
    with ServerThread(create_app(Generator(settings, client=client))) as server:
        body = json.dumps({"prompt": "a fan", "seed": 9}).encode()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"POST /alpha/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        prompt_id = client.wait_reached(job_bound(settings))
        gone = time.time()
        sock.close()
        idle = wait_idle(comfy.client, TICK_S + STOP_TAIL_S + LOAD_SLACK_S)
    told = [r.created for r in caplog.records if r.getMessage() == f"prompt {prompt_id} dequeued and interrupted"]
    assert told, "the handler interrupted the prompt"
    record_property("told_after_s", round(told[0] - gone, 2))
    assert 0 <= told[0] - gone < TOLD_WITHIN_S, f"the prompt was stopped {told[0] - gone:.1f} s after the disconnect"
    assert "execution_interrupted" in json.dumps(status_of(comfy.client, prompt_id)), f"idle after {idle:.1f} s"
    assert not (tmp_path / "served").exists() or list((tmp_path / "served").iterdir()) == []
    assert leftovers(comfy.settings) == []
