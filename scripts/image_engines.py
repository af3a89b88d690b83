"""Running a built image with docker or buildah, for ``scripts.image_smoke``: one small interface, two engines.

buildah has no daemon and no ``run`` of an image: a working container is made from the image once, and each
phase runs in it with chroot isolation, in the host's network and PID namespaces. ``buildah run`` does not pass
SIGTERM on (it kills its child), so the container's main process (``bootstrap.sh``, which execs the supervisor)
is found among its descendants and signalled directly, as RunPod's runtime signals a container's PID 1.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

import psutil

MAIN_PROCESS = "handler.supervisor"  # what ./bootstrap.sh execs: the container's main process
FIND_TIMEOUT_S = 10.0


class Engine(Protocol):
    def cmd(self) -> list[str]: ...

    def start(
        self, env: dict[str, str], args: list[str], volumes: dict[Path, str], out: IO[bytes]
    ) -> subprocess.Popen[bytes]: ...

    def terminate(self, proc: subprocess.Popen[bytes]) -> None: ...

    def kill(self, proc: subprocess.Popen[bytes]) -> None: ...

    def layer_table(self) -> str: ...


def output(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.2f} GiB"


def format_layers(rows: list[tuple[int, str]]) -> str:
    """Each layer's size and the step that made it (a layer imported without one: the stand-in base's)."""
    lines = [f"{'size':>10}  step"]
    for size, created_by in rows:
        step = re.sub(r"^\|\d+ (\S+=\S* )*", "RUN ", created_by).replace("/bin/sh -c #(nop) ", "")
        step = " ".join(step.split())[:110] if step not in ("", "/bin/sh") else "(a base image layer)"
        lines.append(f"{human(size):>10}  {step}")
    lines.append(f"{human(sum(size for size, _ in rows)):>10}  in all ({len(rows)} layers, unpacked)")
    return "\n".join(lines)


class Buildah:
    def __init__(self, image: str, storage: str) -> None:
        self.image = image
        self.base = ["buildah", "--storage-driver", storage]
        self.container = output([*self.base, "from", "--pull=false", image]).strip()

    def close(self) -> None:
        subprocess.run([*self.base, "rm", self.container], capture_output=True, timeout=120, check=False)

    def cmd(self) -> list[str]:
        config = json.loads(output([*self.base, "inspect", "--type", "image", self.image]))
        return list(config["OCIv1"]["config"]["Cmd"])

    def start(
        self, env: dict[str, str], args: list[str], volumes: dict[Path, str], out: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        command = [*self.base, "run", "--isolation", "chroot"]
        command += [f"--env={key}={value}" for key, value in env.items()]
        command += [f"--volume={host}:{inside}" for host, inside in volumes.items()]
        return subprocess.Popen([*command, self.container, "--", *args], stdout=out, stderr=subprocess.STDOUT)

    def terminate(self, proc: subprocess.Popen[bytes]) -> None:
        main_process(proc.pid).send_signal(signal.SIGTERM)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait(30)

    def layer_table(self) -> str:
        config = json.loads(output([*self.base, "inspect", "--type", "image", self.image]))
        sizes = [int(layer["size"]) for layer in json.loads(config["Manifest"])["layers"]]
        steps = [h.get("created_by", "") for h in config["OCIv1"]["history"] if not h.get("empty_layer", False)]
        return format_layers(list(zip(sizes, steps, strict=True)))


def main_process(pid: int) -> psutil.Process:
    """The container's main process among a ``buildah run``'s descendants, once it has started."""
    deadline = time.monotonic() + FIND_TIMEOUT_S
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            if any(MAIN_PROCESS in part for part in child.cmdline()):
                return child
        time.sleep(0.1)
    raise AssertionError(f"no {MAIN_PROCESS} process under buildah run (pid {pid})")


class Docker:
    def __init__(self, image: str) -> None:
        self.image = image
        self.names: list[str] = []

    def close(self) -> None:
        for name in self.names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)

    def cmd(self) -> list[str]:
        return list(json.loads(output(["docker", "image", "inspect", "--format", "{{json .Config.Cmd}}", self.image])))

    def start(
        self, env: dict[str, str], args: list[str], volumes: dict[Path, str], out: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        name = f"alpha-image-check-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        command = ["docker", "run", "--rm", "--name", name, "--network", "host"]
        command += [f"--env={key}={value}" for key, value in env.items()]
        command += [f"--volume={host}:{inside}" for host, inside in volumes.items()]
        return subprocess.Popen([*command, self.image, *args], stdout=out, stderr=subprocess.STDOUT)

    def _name(self, proc: subprocess.Popen[bytes]) -> str:
        args = proc.args if isinstance(proc.args, list) else []
        return str(args[args.index("--name") + 1])

    def terminate(self, proc: subprocess.Popen[bytes]) -> None:
        subprocess.run(["docker", "kill", "--signal", "TERM", self._name(proc)], timeout=60, check=True)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        subprocess.run(["docker", "kill", self._name(proc)], capture_output=True, timeout=60, check=False)
        proc.wait(30)

    def layer_table(self) -> str:
        lines = output(["docker", "history", "--no-trunc", "--format", "{{json .}}", self.image]).splitlines()
        rows = [json.loads(line) for line in reversed(lines)]
        return format_layers([(docker_size(row["Size"]), row["CreatedBy"]) for row in rows if row["Size"] != "0B"])


def docker_size(text: str) -> int:
    number, unit = re.fullmatch(r"([\d.]+)\s*([kMG]?B)", text).groups()  # type: ignore[union-attr]
    return int(float(number) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit])


@contextmanager
def make_engine(name: str, image: str, storage: str) -> Iterator[Engine]:
    engine: Buildah | Docker = Buildah(image, storage) if name == "buildah" else Docker(image)
    try:
        yield engine
    finally:
        engine.close()
