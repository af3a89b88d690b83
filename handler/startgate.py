"""The RunPod worker's start gate: started early by the supervisor, it takes no job until it is told to.

The supervisor starts the worker while ComfyUI boots and warms up, so that the worker's imports (the RunPod SDK:
about 1.5 s, most of it a CPU-info probe the SDK runs at import), settings and workflow loading overlap them. The
worker then blocks on its stdin, a pipe only the supervisor writes to. The supervisor writes ``GO`` once readiness
and the warm-up succeeded; anything else (end of file: the supervisor gave up or died; the deadline) means the
worker must exit without taking a job.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
from typing import IO

from handler.deadline import Deadline

GO = b"go\n"
READ_BYTES = 64


def wait_for_go(stream: IO[bytes], timeout_s: float) -> bool:
    """True once the supervisor sent GO; False on anything else, end of file or the deadline."""
    deadline = Deadline(timeout_s)
    fd = stream.fileno()
    received = b""
    while not deadline.expired():
        readable, _, _ = select.select([fd], [], [], deadline.remaining())
        if not readable:
            break
        chunk = os.read(fd, READ_BYTES)  # unbuffered: nothing past the line stays hidden in a buffer
        if not chunk:
            return False
        received += chunk
        if b"\n" in received:
            return received.startswith(GO)
    return False


def open_gate(worker: subprocess.Popen[bytes]) -> bool:
    """Tell a gated worker to take jobs and close the pipe; False when the worker is already gone."""
    assert worker.stdin is not None, "a gated worker is started with stdin=subprocess.PIPE"
    try:
        worker.stdin.write(GO)
        worker.stdin.flush()
    except BrokenPipeError:
        return False
    finally:
        close_gate(worker)
    return worker.poll() is None


def close_gate(worker: subprocess.Popen[bytes]) -> None:
    """End of file on the worker's stdin: a worker still waiting exits without taking a job."""
    if worker.stdin is not None and not worker.stdin.closed:
        with contextlib.suppress(BrokenPipeError):
            worker.stdin.close()
