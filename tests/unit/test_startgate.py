"""The start gate between the supervisor and the RunPod worker it starts early (handler.startgate)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from handler import startgate
from handler.paths import REPO

GATED = "import sys; from handler import startgate; sys.exit(0 if startgate.wait_for_go(sys.stdin.buffer, 30) else 3)"


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def wait(read: int, timeout_s: float = 5.0) -> bool:
    with os.fdopen(os.dup(read), "rb", buffering=0) as stream:
        return startgate.wait_for_go(stream, timeout_s)


def test_go_opens_the_gate(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, b"g")  # a line may arrive in pieces
    os.write(write, b"o\n")
    assert wait(read)


@pytest.mark.parametrize("sent", [b"", b"stop\n", b"gone\n", b"go"])
def test_anything_else_keeps_it_shut(pipe: tuple[int, int], sent: bytes) -> None:
    read, write = pipe
    os.write(write, sent)
    os.close(write)  # end of file: the supervisor gave up or died
    assert not wait(read)


def test_the_gate_has_a_deadline(pipe: tuple[int, int]) -> None:
    read, _ = pipe
    started = time.monotonic()
    assert not wait(read, 0.2)
    assert 0.2 <= time.monotonic() - started < 2


def start_gated() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", GATED], stdin=subprocess.PIPE, cwd=REPO)


def test_the_supervisor_side_opens_and_closes_it() -> None:
    opened, shut = start_gated(), start_gated()
    assert startgate.open_gate(opened)
    startgate.close_gate(shut)
    assert (opened.wait(30), shut.wait(30)) == (0, 3)
    assert opened.stdin is not None and opened.stdin.closed


def test_opening_the_gate_of_a_dead_worker_says_so() -> None:
    worker = start_gated()
    worker.kill()
    worker.wait(30)
    assert not startgate.open_gate(worker)
