"""``python -m handler.supervisor [ARGS...]``: what ``bootstrap.sh`` runs.

Starts ComfyUI (its only owner), waits until it is ready and warmed up, and runs a door:
``serve`` runs the local alpha API (``python -m handler.doors.alpha.server``) after that; any other
arguments go to the RunPod worker (``python -m handler.doors.runpod ARGS...``, so RunPod's local flags pass
through), which is started right after ComfyUI so that its imports overlap ComfyUI's start and the warm-up, and
which takes no job before the supervisor opens its start gate (``handler.startgate``) once the warm-up is done.
It forwards SIGTERM/SIGINT, stops both processes on the way out, and exits non-zero with a clear log line if
ComfyUI dies, instead of leaving a worker that hangs.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from handler import logs, readiness, startgate, testmodels
from handler.comfyui.process import ComfyProcess, die_with_parent
from handler.errors import AlphaError, GpuUnavailable, TestModelsMissing, TransparencyError
from handler.generate import Generator
from handler.settings import Settings, load_or_exit

log = logging.getLogger("handler.supervisor")

WORKER_STOP_S = 30.0
# Sent to the RunPod worker after SIGTERM: drain (handler.doors.runpod.drain), then exit. The SDK installs no
# handler for it (tests/unit/test_runpod_sdk.py).
DRAIN_SIGNAL = signal.SIGUSR1
# How long the RunPod worker may take beyond ALPHA_DRAIN_TIMEOUT_S: its cancelled jobs' posts
# (drain.CANCEL_GRACE_S), and a margin.
DRAIN_GRACE_S = 20.0
GPU_CHECK_TIMEOUT_S = 120.0
# Building the test models: ~50 s on a 2-core machine (a 2.2 GiB checkpoint written); a bound for slower disks.
TEST_MODELS_TIMEOUT_S = 900.0
POLL_S = 0.5
RUNPOD_DOOR = "handler.doors.runpod"
ALPHA_DOOR = "handler.doors.alpha.server"


def gpu_preflight() -> None:
    """Run handler.gpucheck in a child process (the supervisor never imports torch)."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "handler.gpucheck"],
            capture_output=True,
            text=True,
            timeout=GPU_CHECK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GpuUnavailable(
            f"GPU preflight did not finish within {GPU_CHECK_TIMEOUT_S:.0f} s (a hung driver?)"
        ) from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or [f"exit code {result.returncode}"]
        reason = lines[-1].removeprefix("GPU preflight failed: ")  # the last line; a traceback ends in its cause
        raise GpuUnavailable(f"GPU preflight failed: {reason}")
    log.info("%s", result.stdout.strip())


def build_test_models(settings: Settings) -> None:
    """Test mode on a machine without test models (the image: ``scripts/setup.sh`` is a checkout's): build them in
    a child process (``python -m handler.models.testmodels``, a tool that imports torch and ComfyUI; the
    supervisor imports neither). Its log goes to ours."""
    folder = testmodels.models_dir(settings.test_models_cache)
    log.info("test mode: building the random-weight test models in %s (once per cache folder)", folder)
    testmodels_args = ["--comfyui", str(settings.comfyui_dir), "--cache", str(settings.test_models_cache)]
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "handler.models.testmodels", *testmodels_args],
            timeout=TEST_MODELS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TestModelsMissing(f"building the test models took over {TEST_MODELS_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0 or not testmodels.is_complete(folder):
        raise TestModelsMissing(
            f"building the test models in {folder} failed (exit code {result.returncode}; its log is above)"
        )
    log.info("test models built in %.1f s", time.monotonic() - started)


def door_command(args: list[str]) -> list[str]:
    """The module and arguments of the door to run: ``serve`` alone, or the RunPod worker's arguments."""
    if args[:1] == ["serve"]:
        if len(args) > 1:
            raise SystemExit(
                f"'serve' takes no arguments (got {' '.join(args[1:])}); the alpha API is "
                "configured by ALPHA_SERVE_* settings"
            )
        return [ALPHA_DOOR]
    return [RUNPOD_DOOR, *args]


class Supervisor:
    def __init__(self, settings: Settings, worker_args: list[str]) -> None:
        self.settings = settings
        self.worker_args = worker_args
        self.comfy = ComfyProcess(settings)
        self.worker: subprocess.Popen[bytes] | None = None
        # The RunPod worker is started early and waits at its start gate until the warm-up is done.
        self.gated = door_command(worker_args)[0] == RUNPOD_DOOR
        self.gate_pending = False
        self.stopping = threading.Event()
        self.received: signal.Signals | None = None
        self.generator: Generator | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)
        self.stopping.set()

    def preflight(self) -> None:
        """What must hold before ComfyUI starts: the workflow loads, the test models exist, CUDA works."""
        s = self.settings
        self.generator = Generator(s)
        if s.test_models and not testmodels.is_complete(testmodels.models_dir(s.test_models_cache)):
            build_test_models(s)
        if s.gpu_preflight and s.effective_device == "cuda":
            gpu_preflight()

    def prepare(self) -> None:
        """After ComfyUI is ready and before the worker takes jobs: the workflow fits this ComfyUI and its
        models are present, then a warm-up job. A worker that cannot serve never takes a job."""
        assert self.generator is not None
        ready = readiness.require(self.generator.workflows, self.generator.client, modes=self.generator.modes.workflows)
        self._report_modes(ready)
        if not self.settings.warmup:
            log.info("warm-up skipped (ALPHA_WARMUP=0): the first job loads the models")
            return
        started = time.monotonic()
        try:
            done = self.generator.warm_up()
            execution = done.info["timings_ms"]["comfyui_execution"]
            log.info("warm-up done in %d ms (ComfyUI execution %s ms)", (time.monotonic() - started) * 1000, execution)
        except TransparencyError as exc:
            # A few steps may legitimately give a flat alpha; the models are loaded all the same.
            log.warning("warm-up done in %d ms, with a warning: %s", (time.monotonic() - started) * 1000, exc)

    @staticmethod
    def _report_modes(ready: readiness.Readiness) -> None:
        """Which layer modes this worker serves, in the start-up log: a missing model file shows here, not only at
        a client's first job in that mode."""
        for name, state in ready.checks.items():
            if name.startswith("mode_"):
                report = log.info if state == "ok" else log.warning
                report("layer mode %s: %s", name.removeprefix("mode_"), state)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            code = self._start()
            return self._watch() if code is None else code
        finally:
            self._stop_worker()
            self.comfy.stop()

    def _start(self) -> int | None:
        """Everything before the first job; an exit code when the start failed or was stopped."""
        try:
            self.preflight()
            self.comfy.start()
            if self.gated:
                self._spawn_worker()
            self.comfy.wait_ready()
            if not self.stopping.is_set():
                self.prepare()
        except AlphaError as exc:
            log.error("cannot start: %s", exc)
            return 1
        if self.stopping.is_set():
            assert self.received is not None
            return 128 + self.received.value
        return self._let_the_worker_in()

    def _spawn_worker(self) -> None:
        # Like ComfyUI, the worker must not outlive the supervisor, even if it is SIGKILLed.
        self.worker = subprocess.Popen(
            [sys.executable, "-m", *door_command(self.worker_args)],
            stdin=subprocess.PIPE if self.gated else None,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        self.gate_pending = self.gated

    def _let_the_worker_in(self) -> int | None:
        """Start the door, or open the gated worker's start gate; an exit code when that worker is gone."""
        if self.worker is None:
            self._spawn_worker()
            return None
        self.gate_pending = False
        if startgate.open_gate(self.worker):
            return None
        log.error("the RunPod worker exited with code %s before the warm-up ended", self.worker.poll())
        return 1

    def _watch(self) -> int:
        assert self.worker is not None
        while True:
            if self.stopping.wait(POLL_S):
                assert self.received is not None
                log.info("%s received: stopping the worker and ComfyUI", self.received.name)
                return 128 + self.received.value
            code = self.worker.poll()
            if code is not None:
                log.info("worker exited with code %d", code)
                return code
            if not self.comfy.alive():
                log.error(
                    "ComfyUI exited unexpectedly with code %s; stopping the worker so that the "
                    "container restarts instead of hanging",
                    self.comfy.returncode,
                )
                return 1

    def _stop_worker(self) -> None:
        """SIGTERM, then for the RunPod worker its drain signal: it finishes its job (or cancels it and posts the
        error past ALPHA_DRAIN_TIMEOUT_S) and exits; ComfyUI stays up meanwhile. Killed if it overstays."""
        if self.worker is None or self.worker.poll() is not None:
            return
        if self.gate_pending:
            # Never let in: end of file at its gate, and SIGTERM stops it before it holds any job.
            startgate.close_gate(self.worker)
        wait_s = WORKER_STOP_S
        self.worker.send_signal(self.received or signal.SIGTERM)
        if self.gated:
            self.worker.send_signal(DRAIN_SIGNAL)
            wait_s = self.settings.drain_timeout_s + DRAIN_GRACE_S
        try:
            self.worker.wait(wait_s)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop within %.0f s; killing it", wait_s)
            self.worker.kill()
            self.worker.wait(10)


def main(argv: list[str] | None = None) -> int:
    settings = load_or_exit()
    logs.configure(settings.log_level)
    args = sys.argv[1:] if argv is None else argv
    door_command(args)  # refuse bad arguments before starting anything
    return Supervisor(settings, args).run()


if __name__ == "__main__":
    sys.exit(main())
