"""What the benchmark scripts share: settings for a private ComfyUI, the summary figures, the table.

Benchmarks print figures; they assert nothing about time. Each runs from the repository root as
``.venv/bin/python -m bench.<name>``, against the real ComfyUI with the test models (random weights,
production file names and key format).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from handler.comfyui.process import ComfyProcess
from handler.generate import test_size
from handler.settings import Settings
from handler.workflow.graph import Workflow
from tests.helpers import free_port


@dataclass(frozen=True)
class Summary:
    """Median, p90, min and max of a sample (seconds unless the caller says otherwise)."""

    n: int
    median: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no values to summarise")
        ordered = sorted(values)
        # Nearest rank: with 10 samples p90 is the 9th, an observed value.
        rank = max(0, min(len(ordered) - 1, -(-9 * len(ordered) // 10) - 1))
        return cls(len(ordered), statistics.median(ordered), ordered[rank], ordered[0], ordered[-1])

    def ms(self) -> str:
        return (
            f"median {self.median * 1000:.1f} ms, p90 {self.p90 * 1000:.1f}, min {self.low * 1000:.1f}, "
            f"max {self.high * 1000:.1f} (n={self.n})"
        )

    def s(self) -> str:
        return f"median {self.median:.3f} s, p90 {self.p90:.3f}, min {self.low:.3f}, max {self.high:.3f} (n={self.n})"


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows) + 2
    print(f"\n== {title} ==")
    for name, value in rows:
        print(f"{name:{width}}{value}")
    sys.stdout.flush()


def bench_settings(args: argparse.Namespace, **changes: object) -> Settings:
    """The environment's settings with run_arguments' device, size and steps, on a free port, with a private
    output folder. Test mode (the CI test models, ALPHA_TEST_SIZE and ALPHA_TEST_STEPS, or size and steps)
    unless ALPHA_MODELS_DIR names a models folder: then production mode, the workflow's own size and steps
    (bench/gpu.sh's full-size run)."""
    base = Settings.from_env()
    settings = base.replace(
        test_models=base.models_dir is None,
        device=args.device,
        comfyui_port=free_port(),
        output_dir=Path(tempfile.mkdtemp(prefix="alpha-bench-out-")),
        test_size=args.size or base.test_size,
        test_steps=args.steps or base.test_steps,
        **changes,
    )
    if not (settings.comfyui_dir / "main.py").is_file():
        raise SystemExit(f"no ComfyUI at {settings.comfyui_dir}: run scripts/setup.sh")
    return settings


@contextlib.contextmanager
def running_comfyui(settings: Settings, log_path: Path) -> Iterator[ComfyProcess]:
    """A ready ComfyUI owned by this block; its output goes to log_path."""
    process = ComfyProcess(settings, log_path=log_path)
    try:
        process.start()
        process.wait_ready()
        yield process
    finally:
        process.stop()


def run_arguments(parser: argparse.ArgumentParser, *, device: str = "") -> None:
    """The arguments every ComfyUI-running script takes (bench_settings reads them): device, and size and
    steps in test mode."""
    parser.add_argument("--device", default=device, help=f"cpu or cuda (default: {device or 'auto'})")
    parser.add_argument("--size", type=int, help="test mode: longest side (default ALPHA_TEST_SIZE)")
    parser.add_argument("--steps", type=int, help="test mode: sampler steps (default ALPHA_TEST_STEPS)")


def log_folder(path: Path | None, prefix: str) -> Path:
    """The given folder for a run's logs (created), or a new temporary one."""
    folder = path or Path(tempfile.mkdtemp(prefix=prefix))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_shape(settings: Settings, workflow: Workflow) -> tuple[int, int, int | None]:
    """Width, height and steps (None: the workflow's) of a default request, as the core runs it."""
    width, height = int(workflow.defaults["width"]), int(workflow.defaults["height"])
    if settings.test_models:
        return (*test_size(width, height, settings.test_size), settings.test_steps)
    return width, height, None


def describe(settings: Settings) -> str:
    """The run's mode for a table title."""
    device = settings.effective_device or "auto device"
    if settings.test_models:
        return f"{device}, test models, {settings.test_size} px, {settings.test_steps} steps"
    return f"{device}, production mode (models in {settings.models_dir}), the workflow's size and steps"
