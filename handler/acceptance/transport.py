"""HTTP for the acceptance run, made for an endpoint that is not trusted yet (the standard library only).

- **The key goes to the endpoint's own origin only**: its scheme, host and port. A request anywhere else goes
  without it, and no redirect is ever followed: a 30x comes back as the answer, with its ``Location``.
- **A deadline bounds a request to its last byte.** A socket timeout bounds each read, so an endpoint that
  trickles a byte at a time would never time out; a watchdog shuts the socket when the deadline passes, whatever
  the request is doing then (connecting, the TLS handshake, the status line, the body).
- **An answer is at most MAX_BODY_BYTES**, whatever its ``Content-Length`` claims, and a body shorter than its
  ``Content-Length`` is an error, not a short answer.
- Whatever goes wrong (a malformed status line, JSON nested past what Python parses, a broken chunk) is an
  ``ApiError`` that says what, never another exception.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from handler.acceptance.values import printable
from handler.deadline import Deadline

MAX_BODY_BYTES = 64 * 2**20  # the worker's output stays under 10 MB (RunPod's limit); its files are smaller
CHUNK_BYTES = 2**16
DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port


class ApiError(Exception):
    """The endpoint could not be reached, or answered with something that is not its API."""


class Budget(Deadline):
    """A deadline with the name the user knows it by (``--job-timeout``), for the error that says it passed."""

    def __init__(self, seconds: float, name: str) -> None:
        super().__init__(seconds)
        self.name = name

    def passed(self) -> str:
        return f"no complete answer within {self.name} ({self.seconds:g} s)"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    location: str | None  # a redirect's target, never followed


def origin(url: str) -> Origin | None:
    """The URL's scheme, host and port (the default port filled in); None for anything but http and https."""
    try:
        parts = urllib.parse.urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host.lower(), port or DEFAULT_PORTS[scheme]


def shown_url(url: str) -> str:
    """A URL for a message: without its query (where a signature would be), printable."""
    return printable(url.split("?", 1)[0], 200)


class Http:
    """One request at a time, each on its own connection; ``auth`` goes only to ``endpoint``'s origin."""

    def __init__(self, endpoint: str, auth: dict[str, str]) -> None:
        self.origin = origin(endpoint)
        self.auth = auth

    def call(self, method: str, url: str, deadline: Budget, body: Any = None) -> Reply:
        target = origin(url)
        if target is None:
            raise ApiError(f"{method} {shown_url(url)}: not an http or https URL")
        headers = {"Connection": "close", "Accept-Encoding": "identity", **(self.auth if target == self.origin else {})}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            reply = exchange(method, url, target, headers=headers, data=data, deadline=deadline)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ApiError(
                f"{method} {shown_url(url)}: {deadline.passed() if deadline.expired() else why(exc)}"
            ) from None
        if 300 <= reply.status < 400:
            where = origin(urllib.parse.urljoin(url, reply.location or ""))
            to = f"{where[0]}://{where[1]}:{where[2]}" if where else printable(str(reply.location), 100)
            raise ApiError(f"{method} {shown_url(url)}: HTTP {reply.status}, a redirect to {to}: not followed")
        return reply

    def json(self, method: str, url: str, deadline: Budget, body: Any = None) -> tuple[Reply, Any]:
        reply = self.call(method, url, deadline, body)
        try:
            return reply, json.loads(reply.body)
        except RecursionError:
            raise ApiError(f"{method} {shown_url(url)}: HTTP {reply.status}: JSON nested too deeply to read") from None
        except ValueError:  # UnicodeDecodeError included
            head = printable(repr(reply.body[:200]))
            raise ApiError(f"{method} {shown_url(url)}: HTTP {reply.status}, not JSON: {head}") from None


def why(exc: Exception) -> str:
    """What went wrong, in words, for a failed request."""
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the connection closed before an answer"
    if isinstance(exc, http.client.BadStatusLine):
        return f"a malformed status line: {printable(str(exc), 100)}"
    if isinstance(exc, http.client.IncompleteRead):
        if exc.expected is None:  # chunked: a chunk's size line that is not one
            return f"a broken chunked body after {len(exc.partial)} bytes"
        return f"the body ended after {len(exc.partial)} bytes, {exc.expected} short of its Content-Length"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return printable(exc.strerror)
    if isinstance(exc, ValueError):  # read_body's limit, http.client's refusals (a URL with control characters)
        return printable(str(exc))
    return f"{type(exc).__name__}: {printable(str(exc))}"


def exchange(
    method: str, url: str, target: Origin, *, headers: dict[str, str], data: bytes | None, deadline: Budget
) -> Reply:
    """The request on a fresh connection, under the deadline's watchdog."""
    scheme, host, port = target
    sock = connect(host, port, deadline)
    watched = sock.dup()  # shutting a duplicate shuts the connection, and leaves the TLS object alone
    watchdog = threading.Timer(deadline.remaining(), shut, (watched,))
    watchdog.daemon = True
    watchdog.start()
    conn: http.client.HTTPConnection | None = None
    try:
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            conn = http.client.HTTPSConnection(host, port)
        else:
            conn = http.client.HTTPConnection(host, port)
        conn.sock = sock
        parts = urllib.parse.urlsplit(url)
        conn.request(method, urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")), data, headers)
        response = conn.getresponse()
        return Reply(response.status, read_body(response), response.getheader("Location"))
    finally:
        watchdog.cancel()
        watched.close()
        if conn is not None:
            conn.close()
        sock.close()


def connect(host: str, port: int, deadline: Budget) -> socket.socket:
    """A connection to one of the host's addresses, in the time the deadline leaves (all of them together)."""
    error: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if deadline.expired():
            raise TimeoutError
        sock = socket.socket(family, kind, proto)
        sock.settimeout(deadline.remaining())
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def shut(sock: socket.socket) -> None:
    """The deadline passed: whatever the request waits for now, it stops waiting."""
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def read_body(response: http.client.HTTPResponse) -> bytes:
    """The body, up to MAX_BODY_BYTES; raises ValueError past that, and IncompleteRead when it is cut short."""
    claimed = response.length  # Content-Length as http.client read it; None when absent (chunked, or to close)
    if claimed is not None and claimed > MAX_BODY_BYTES:
        raise ValueError(f"the answer claims {claimed} bytes; this run reads at most {MAX_BODY_BYTES} bytes")
    parts, size = [], 0
    while chunk := response.read(CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ValueError(f"the answer is over {MAX_BODY_BYTES} bytes, the most this run reads")
        parts.append(chunk)
    body = b"".join(parts)
    if response.length:  # what is left of its Content-Length: the connection closed early
        raise http.client.IncompleteRead(body, response.length)
    return body
