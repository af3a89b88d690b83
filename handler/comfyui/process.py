"""The one owner of the ComfyUI process: start, stop, liveness and readiness.

ComfyUI binds 127.0.0.1 only, serves no web frontend (an empty
``--front-end-root``) and no API nodes. Liveness is "the process runs";
readiness is "it answers HTTP and the LayerDiffuse nodes are registered".
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from handler.comfyui.client import ComfyClient
from handler.deadline import Deadline
from handler.errors import AlphaError, ComfyUnavailable
from handler.settings import Settings

log = logging.getLogger(__name__)

READY_NODE = "LayeredDiffusionApply"
# Runs ComfyUI's main.py without the parts this worker never uses (their tracebacks at start).
LAUNCHER = Path(__file__).with_name("launch.py")
POLL_S = 0.25
MODEL_FOLDERS = ("checkpoints", "layer_model", "vae", "loras")
PR_SET_PDEATHSIG = 1


def wait_for_comfyui(client: ComfyClient, timeout_s: float, process: ComfyProcess | None = None) -> None:
    """Block until ComfyUI is ready; raises ComfyUnavailable at the deadline or if the process dies."""
    deadline = Deadline(timeout_s)
    last = "no answer yet"
    while not deadline.expired():
        if process is not None and not process.alive():
            raise ComfyUnavailable(
                f"ComfyUI exited with code {process.returncode} before it was ready{process.log_hint()}"
            )
        try:
            if client.has_node(READY_NODE, Deadline(min(5.0, deadline.remaining() + 0.05))):
                return
            last = f"ComfyUI answers but has no {READY_NODE} node (custom nodes failed to load?)"
        except AlphaError as exc:
            last = exc.message
        time.sleep(min(POLL_S, deadline.remaining()))
    raise ComfyUnavailable(f"ComfyUI was not ready within {timeout_s:.0f} s: {last}")


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """If the owner dies without stopping ComfyUI (SIGKILL, OOM), the kernel stops ComfyUI too."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ComfyProcess:
    def __init__(self, settings: Settings, *, log_path: Path | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._runtime: Path | None = None
        self._log_file: IO[bytes] | None = None
        # Readiness probes only: short timeouts, no job traffic.
        self._probe = ComfyClient(settings.comfyui_url, http_timeout_s=5.0)

    def command(self, runtime: Path) -> list[str]:
        s = self.settings
        cmd = [
            sys.executable,
            str(LAUNCHER),
            "main.py",
            "--listen",
            "127.0.0.1",
            "--port",
            str(s.comfyui_port),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--front-end-root",
            str(runtime / "frontend"),
            "--output-directory",
            str(s.effective_output_dir),
            "--input-directory",
            str(s.input_dir),
            "--verbose",
            s.comfyui_log_level,
            # No prompt or workflow text in the PNG: the prompt stays out of files, and each response is
            # 4.4 KB smaller (bench/output_cost.py). Previews are off by default; pinned, not assumed.
            "--disable-metadata",
            "--preview-method",
            "none",
        ]
        if s.effective_device == "cpu":
            cmd.append("--cpu")
        cmd += ["--extra-model-paths-config", str(runtime / "extra_model_paths.yaml")]
        # ComfyUI's start-up database (nothing here reads it) in the runtime folder, not in ComfyUI's own.
        cmd += ["--database-url", f"sqlite:///{runtime / 'comfyui.db'}"]
        return cmd + list(s.comfyui_args)

    def _write_runtime(self) -> Path:
        runtime = Path(tempfile.mkdtemp(prefix="alpha-comfyui-"))
        (runtime / "frontend").mkdir()
        # Always written, even for ComfyUI's own models/: stock ComfyUI does not know the layer_model folder,
        # so without this it could not list it (GET /models/layer_model, the readiness check). is_default puts
        # these folders first, so ComfyUI-layerdiffuse's layer_model root is ours.
        (runtime / "extra_model_paths.yaml").write_text(self.model_paths_yaml())
        return runtime

    def model_paths_yaml(self) -> str:
        """ComfyUI's extra model paths: our models folder, and a network volume's when one is mounted.
        Each is_default section goes to the front, so the one written last is searched first; the volume
        wins because ComfyUI-layerdiffuse only looks in the first layer_model folder."""
        models = self.settings.effective_models_dir or self.settings.comfyui_dir / "models"
        sections: list[tuple[str, Path, tuple[str, ...]]] = [("alpha", models, MODEL_FOLDERS)]
        volume = self.settings.volume_dir / "models"
        # Only the volume's folders that exist: an empty volume must not shadow baked layer_model files. Never in
        # test mode: test models and real ones do not mix.
        on_volume = tuple(folder for folder in MODEL_FOLDERS if (volume / folder).is_dir())
        if on_volume and not self.settings.test_models:
            sections.append(("runpod_volume", volume, on_volume))
        lines = []
        for name, base, folders in sections:
            lines += [f"{name}:", f"  base_path: {base}", "  is_default: true"]
            lines += [f"  {folder}: {folder}" for folder in folders]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("ComfyUI is already started")
        main_py = self.settings.comfyui_dir / "main.py"
        if not main_py.is_file():
            raise ComfyUnavailable(
                f"no ComfyUI at {self.settings.comfyui_dir}; run scripts/install_comfyui.py "
                "(or scripts/setup.sh) or set ALPHA_COMFYUI_DIR"
            )
        self._runtime = self._write_runtime()
        self.settings.effective_output_dir.mkdir(parents=True, exist_ok=True)
        self.settings.input_dir.mkdir(parents=True, exist_ok=True)
        out: Any = None
        if self.log_path is not None:
            self._log_file = self.log_path.open("ab")
            out = self._log_file
        cmd = self.command(self._runtime)
        log.info("starting ComfyUI: %s", " ".join(cmd[1:]))
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.settings.comfyui_dir,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # Safe here: the owner starts ComfyUI before it starts any thread. PDEATHSIG fires when
            # the *thread* that forked exits, so start() belongs on a long-lived thread.
            preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        if not self.alive():
            return False
        try:
            return self._probe.has_node(READY_NODE)
        except AlphaError:
            return False

    def wait_ready(self, timeout_s: float | None = None) -> None:
        started = time.monotonic()
        wait_for_comfyui(self._probe, timeout_s or self.settings.ready_timeout_s, self)
        log.info("ComfyUI ready on port %d after %.1f s", self.settings.comfyui_port, time.monotonic() - started)

    def log_hint(self) -> str:
        return f"; see {self.log_path}" if self.log_path else "; its output is above"

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout_s; always cleans up. Returns the exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("ComfyUI did not stop within %.0f s; killing it", timeout_s)
                    self._signal(signal.SIGKILL)
                    self.proc.wait(10)
            code = self.proc.returncode
            log.info("ComfyUI stopped (exit code %s)", code)
        self._probe.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None
        return code

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        # ComfyUI runs in its own session: signal the group so helpers it spawned stop too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> ComfyProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
