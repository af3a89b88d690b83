"""A small TCP proxy for fault injection: it sits between the handler and ComfyUI and can cut or stall the
connections that pass through it. The real ComfyUI cannot be made to drop or freeze one websocket while
it goes on working, so this is the one fake in the fault tests: it breaks the wire, not the protocol."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType

from tests.faults.watch import LOAD_SLACK_S, wait_for
from tests.helpers import free_port

BUFFER = 65536
# How often a pump looks up from its sockets (at the stall flag, at closing): a connection closed at either end
# leaves open_connections() within one tick.
PUMP_TICK_S = 0.1


class Proxy:
    """127.0.0.1:<port> -> 127.0.0.1:<target>. ``cut()`` closes every open connection; ``refuse`` makes new
    ones close at once; ``stall()`` freezes the open ones (bytes stop flowing both ways, the sockets stay
    open), while new ones flow normally."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.refuse = False
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Proxy:
        thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        # close() alone does not wake a thread blocked in accept(); shutdown() does (Linux), so the join below
        # returns at once instead of timing out.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(5)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def wait_open_at_most(self, count: int) -> None:
        """Until at most ``count`` connections are open: a close at either end shows within a pump tick."""
        seconds = PUMP_TICK_S + LOAD_SLACK_S
        wait_for(lambda: self.open_connections() <= count, seconds, f"at most {count} connections open")

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream, _ in pairs:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def stall(self) -> None:
        with self._lock:
            for _, _, stalled in self._pairs:
                stalled.set()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            stalled = threading.Event()
            with self._lock:
                self._pairs.append((client, upstream, stalled))
            thread = threading.Thread(
                target=self._pump, args=(client, upstream, stalled), name="proxy-pump", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _pump(self, client: socket.socket, upstream: socket.socket, stalled: threading.Event) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._closing.is_set():
                if stalled.is_set():
                    # Hold everything, unread: a frozen peer, as far as either side can tell.
                    self._closing.wait(PUMP_TICK_S)
                    continue
                readable, _, _ = select.select(list(peers), [], [], PUMP_TICK_S)
                for sock in readable:
                    data = sock.recv(BUFFER)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._pairs = [p for p in self._pairs if p[0] is not client]
            for sock in (client, upstream):
                sock.close()
