"""``python -m scripts.image_smoke --engine buildah|docker --image NAME``: the built image, started and answering.

Run by ``scripts/image_check.sh`` after it built the image. Three phases, each inside the image, each timed:

1. **test job**: the image's own ``CMD`` (``./bootstrap.sh``) with ``--test_input`` and the README's job, in
   test mode with the warm-up off. The test models are made by the image itself, into an empty folder that the
   next phase reuses. Passes when RunPod's "Job result" line says ``success`` and the log has no traceback.
2. **workflow check**: ``python -m handler.workflow check`` of every shipped workflow.
3. **production job**: the same ``CMD`` with no arguments (what RunPod starts) against the loopback RunPod
   job-API emulator (``tests/runpod_emulator.py``): the worker takes one job, posts its result (a real RGBA PNG
   of the requested size), and on SIGTERM to the container's main process exits with 143 within the drain bound.

Then the image's size by layer. The container shares the host's network (the emulator and ComfyUI listen on
127.0.0.1 only); the SDK's fitness checks, which would dial a public DNS server, are off (``SAFE_ENV``).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from handler.paths import REPO
from scripts.image_engines import Engine, make_engine
from tests.helpers import free_port
from tests.runpod_emulator import Emulator, production_env

TEST_JOB = json.loads((REPO / "test_input.json").read_text())
CACHE = "/alpha-check/testmodels"  # where the container sees the host's test-models folder
TEST_JOB_TIMEOUT_S = 900.0  # the image builds its test models first (~1 min here), then one job on the CPU
PRODUCTION_TIMEOUT_S = 600.0
EXIT_TIMEOUT_S = 90.0  # the drain bound (ALPHA_DRAIN_TIMEOUT_S, below) and the stop of both processes
ALARMS = ("Traceback", "IMPORT FAILED", "ModuleNotFoundError")
START_LOG_LINES = 40


@dataclass
class Smoke:
    engine: Engine
    logs: Path
    cache: Path
    timings: list[tuple[str, float, bool]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """Test mode, warm-up off, a free ComfyUI port (the host's network is shared), the shared cache."""
        return {
            "ALPHA_TEST_MODELS": "1",
            "ALPHA_WARMUP": "0",
            "ALPHA_COMFYUI_PORT": str(free_port()),
            "ALPHA_TEST_MODELS_CACHE": CACHE,
            "ALPHA_DRAIN_TIMEOUT_S": "30",
            "CUDA_VISIBLE_DEVICES": "",
            **extra,
        }

    def phase(self, name: str, step: Callable[[], None]) -> bool:
        print(f"== image_smoke: {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            step()
            ok = True
        except AssertionError as exc:
            print(f"== image_smoke: {name} FAILED: {exc}", file=sys.stderr, flush=True)
            ok = False
        took = time.monotonic() - started
        self.timings.append((name, took, ok))
        print(f"== image_smoke: {name} {'passed' if ok else 'FAILED'} in {took:.1f} s", file=sys.stderr, flush=True)
        return ok

    def run(self, name: str, env: dict[str, str], args: list[str], timeout: float) -> str:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = self.engine.start(env, args, {self.cache: CACHE}, out)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.engine.kill(proc)
                raise AssertionError(f"{name} did not finish within {timeout:.0f} s (log: {log})") from None
        text = log.read_text(errors="replace")
        assert code == 0, f"{name} exited with {code} (log: {log}):\n{text[-3000:]}"
        return text

    # ---- the phases
    def test_job(self) -> None:
        text = self.run(
            "test-job", self.env(), [*self.engine.cmd(), "--test_input", json.dumps(TEST_JOB)], TEST_JOB_TIMEOUT_S
        )
        [result] = [line for line in text.splitlines() if "Job result:" in line]
        assert "'status': 'success'" in result, result[:500]
        assert "test mode: building the random-weight test models" in text, "the image made its own test models"
        assert_no_alarm(text, "the test job's log")
        head = "\n".join(text.splitlines()[:START_LOG_LINES])
        print(f"-- the container's first {START_LOG_LINES} log lines:\n{head}\n--", file=sys.stderr, flush=True)

    def workflow_check(self) -> None:
        names = sorted(path.name for path in (REPO / "workflows").glob("*.json"))
        args = [".venv/bin/python", "-m", "handler.workflow", "check", *(f"workflows/{name}" for name in names)]
        text = self.run("workflow-check", {}, args, 120)
        assert f"{len(names)} of {len(names)} workflow(s) pass" in text, text[-2000:]

    def production_job(self) -> None:
        with Emulator(hold_s=2.0) as emulator:
            env = production_env(self.env(), emulator)
            job = emulator.submit({**TEST_JOB["input"], "seed": 11}, "image-check-job")
            log = self.logs / "production.log"
            with log.open("wb") as out:
                proc = self.engine.start(env, self.engine.cmd(), {self.cache: CACHE}, out)
                try:
                    body = emulator.wait_result(job, PRODUCTION_TIMEOUT_S)
                    self.engine.terminate(proc)
                    code = proc.wait(EXIT_TIMEOUT_S)
                except (TimeoutError, subprocess.TimeoutExpired) as exc:
                    self.engine.kill(proc)
                    raise AssertionError(f"{exc} (log: {log})") from None
            text = log.read_text(errors="replace")
            assert code == 128 + signal.SIGTERM, f"exit code {code} after SIGTERM (log: {log}):\n{text[-3000:]}"
            assert_png(body, TEST_JOB["input"])
            assert len(emulator.results(job)) == 1 and emulator.violations == [], emulator.violations
            assert "SIGTERM received" in text and "iVBOR" not in text, "stopped on SIGTERM; no base64 in the log"
            assert_no_alarm(text, "the production worker's log")


def assert_no_alarm(text: str, where: str) -> None:
    found = {alarm: text.count(alarm) for alarm in ALARMS if alarm in text}
    assert not found, f"{found} in {where}"


def assert_png(body: dict[str, Any], job_input: dict[str, Any]) -> None:
    """The posted result is the contract's success with a real RGBA PNG (test mode's size: ALPHA_TEST_SIZE)."""
    output = body.get("output")
    assert isinstance(output, dict) and output.get("status") == "success", str(body)[:500]
    image = Image.open(io.BytesIO(base64.b64decode(output["image_base64"])))
    assert image.format == "PNG" and image.mode == "RGBA", (image.format, image.mode)
    assert max(image.size) == 256 and output["info"]["seed"] == 11, (image.size, output["info"])
    assert output["url"] == "data:image/png;base64," + output["image_base64"]
    assert job_input["prompt"] not in json.dumps(output["info"])


@contextmanager
def scratch() -> Iterator[tuple[Path, Path]]:
    """A log folder that stays, and an empty test-models folder removed afterwards."""
    logs = Path(tempfile.mkdtemp(prefix="alpha-image-check-"))
    cache = Path(tempfile.mkdtemp(prefix="alpha-image-testmodels-"))
    try:
        yield logs, cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.image_smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=("buildah", "docker"), required=True)
    parser.add_argument("--storage", default="vfs", help="buildah's storage driver (scripts/image_check.sh's)")
    parser.add_argument("--image", required=True)
    parser.add_argument(
        "--timing", action="append", default=[], metavar="PHASE=SECONDS", help="an earlier phase, for the table"
    )
    args = parser.parse_args(argv)
    with scratch() as (logs, cache), make_engine(args.engine, args.image, args.storage) as engine:
        smoke = Smoke(engine, logs, cache)
        for timing in args.timing:
            name, _, seconds = timing.rpartition("=")
            smoke.timings.append((name, float(seconds), True))
        ok = smoke.phase("test job (CMD --test_input, test mode)", smoke.test_job)
        ok = smoke.phase("workflow check", smoke.workflow_check) and ok
        ok = ok and smoke.phase("production job (RunPod emulator, SIGTERM)", smoke.production_job)
        print(f"== image_smoke: logs in {logs}", file=sys.stderr)
        print(f"\n{'phase':<44} {'seconds':>7}  result")
        for name, took, passed in smoke.timings:
            print(f"{name:<44} {took:>7.1f}  {'passed' if passed else 'FAILED'}")
        print(f"\nthe image's size by layer ({args.image}):")
        print(engine.layer_table())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
