"""One resumable HTTP download into a ``.part`` file, for the model fetcher.

The partial file is appended to and hashed as it grows, so a resumed or retried
download never reads back what it already hashed. ``Range`` resumes it; a
server that ignores ``Range`` (200) restarts it from zero. Connection errors,
timeouts, HTTP 5xx/429 and bodies cut off before their announced length are
retried with exponential backoff; anything else fails this source at once.
Request headers (the ``Authorization`` token) never reach a log line or an
exception message, and requests drops ``Authorization`` on a redirect to
another host (CivitAI and Hugging Face both redirect to a CDN).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests
from tqdm import tqdm

log = logging.getLogger(__name__)

CHUNK = 1 << 18  # a cut-off read loses at most this much, re-fetched on resume
BACKOFF_S = 2.0  # first pause between attempts; doubles each time
BACKOFF_MAX_S = 60.0
PROGRESS_EVERY_S = 15.0  # log line interval when stderr is not a terminal
_RETRY_ERRORS = (requests.ConnectionError, requests.Timeout)
_QUERY = re.compile(r"[?][^\s'\"]*")


class DownloadError(Exception):
    """This source cannot deliver the file; the message says why and never holds a token."""


class _Retry(Exception):
    """A transient failure worth another attempt."""


def _clean(exc: BaseException) -> str:
    """An exception as text without URL query strings (signed CDN redirects)."""
    return f"{type(exc).__name__}: {_QUERY.sub('?...', str(exc))[:300]}"


class _Part:
    """The partial file, opened for appending, with the sha256 of its bytes so far."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path, self.handle = path, handle
        self.name = path.name.removesuffix(".part")
        self.hasher, self.hashed = hashlib.sha256(), 0

    def size(self) -> int:
        self.handle.flush()
        return os.fstat(self.handle.fileno()).st_size

    def restart(self) -> None:
        self.handle.truncate(0)
        self.hasher, self.hashed = hashlib.sha256(), 0

    def catch_up(self) -> None:
        """Hash what is on disk but not hashed yet (a partial file left by an earlier run)."""
        size = self.size()
        with self.path.open("rb") as reader:
            reader.seek(self.hashed)
            while self.hashed < size and (chunk := reader.read(min(CHUNK, size - self.hashed))):
                self.hasher.update(chunk)
                self.hashed += len(chunk)

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.hasher.update(chunk)
        self.hashed += len(chunk)


class _Progress:
    """A tqdm bar on a terminal, else a log line every PROGRESS_EVERY_S seconds."""

    def __init__(self, label: str, total: int | None, done: int, bar: bool) -> None:
        self.label, self.total, self.done = label, total, done
        self.started, self.first, self.last = time.monotonic(), done, time.monotonic()
        self.bar: Any = (
            tqdm(
                total=total,
                initial=done,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                file=sys.stderr,
                leave=False,
            )
            if bar
            else None
        )

    def update(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            rate = (self.done - self.first) / max(now - self.started, 1e-6) / 1e6
            share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
            of = f" of {self.total / 1e6:.1f}" if self.total else ""
            log.info("%s: %.1f%s MB%s, %.1f MB/s", self.label, self.done / 1e6, of, share, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None)."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (value or "").strip())
    if match is None:
        return None
    return int(match[1]), None if match[2] == "*" else int(match[2])


def _total(response: requests.Response, offset: int, part: _Part, auth_help: str) -> int | None:
    """Check the answer to a request from ``offset``; the file's full size if known. Restarts ``part`` on 200."""
    status = response.status_code
    if status in (401, 403):
        raise DownloadError(f"HTTP {status}: the server refused access; {auth_help}")
    if status == 429 or status >= 500:
        raise _Retry(f"HTTP {status}")
    if status not in (200, 206):
        raise DownloadError(f"HTTP {status}")
    if response.headers.get("Content-Type", "").startswith("text/html"):
        raise DownloadError(f"the server sent an HTML page, not the file (a login page?); {auth_help}")
    length = response.headers.get("Content-Length")
    if status == 200:
        if offset:
            log.info("%s: the server ignored the Range request; starting over from zero", part.name)
            part.restart()
        return int(length) if length and length.isdigit() else None
    parsed = _content_range(response.headers.get("Content-Range"))
    if parsed is None or parsed[0] != offset:
        part.restart()
        raise _Retry(f"the server answered with another range ({response.headers.get('Content-Range')!r})")
    log.info("%s: resuming at byte %d", part.name, offset)
    if parsed[1] is not None:
        return parsed[1]
    return offset + int(length) if length and length.isdigit() else None


def _resume_offset(part: _Part, expected_size: int | None) -> int:
    """Where the partial file ends; it starts over if it is longer than the pinned size."""
    offset = part.size()
    if expected_size is not None and offset > expected_size:
        log.warning("%s: the partial file is longer than the pinned size; starting over", part.name)
        part.restart()
        offset = 0
    return offset


def _write_body(response: requests.Response, part: _Part, total: int | None, bar: bool) -> None:
    """The body appended to the part, hashed as it comes (what was on disk already, first)."""
    part.catch_up()
    progress = _Progress(part.name, total, part.size(), bar)
    try:
        for chunk in response.iter_content(CHUNK):
            part.write(chunk)
            progress.update(len(chunk))
    finally:
        progress.close()


def _attempt(
    session: requests.Session,
    url: str,
    part: _Part,
    *,
    headers: Mapping[str, str],
    expected_size: int | None,
    timeout_s: float,
    auth_help: str,
    bar: bool,
) -> None:
    offset = _resume_offset(part, expected_size)
    if offset and offset == expected_size:
        return  # complete already: an earlier run stopped before verifying it
    request_headers = {**headers, **({"Range": f"bytes={offset}-"} if offset else {})}
    total: int | None = None
    try:
        with session.get(url, headers=request_headers, stream=True, timeout=(timeout_s, timeout_s)) as response:
            if response.status_code == 416 and offset:
                if response.headers.get("Content-Range", "").strip() == f"bytes */{offset}":
                    return  # the partial file is the whole file
                part.restart()
                raise _Retry("the server refused the resume range; starting over")
            total = _total(response, offset, part, auth_help)
            if expected_size is not None and total is not None and total != expected_size:
                raise DownloadError(f"the server offers {total} bytes but the manifest pins {expected_size}")
            _write_body(response, part, total, bar)
    except requests.exceptions.ChunkedEncodingError:
        raise _Retry(f"the body was cut off at byte {part.size()}{f' of {total}' if total else ''}") from None
    except _RETRY_ERRORS as exc:
        raise _Retry(_clean(exc)) from None
    except requests.RequestException as exc:
        raise DownloadError(_clean(exc)) from None
    size = part.size()
    if total is not None and size != total:
        raise _Retry(f"the body was cut off at byte {size} of {total}")


def download(
    session: requests.Session,
    url: str,
    part_path: Path,
    *,
    headers: Mapping[str, str],
    expected_size: int | None,
    timeout_s: float,
    attempts: int,
    auth_help: str,
    bar: bool = False,
    backoff_s: float | None = None,
) -> tuple[str, int]:
    """Fetch ``url`` into ``part_path``, resuming what is there; the sha256 and size of the result."""
    backoff = BACKOFF_S if backoff_s is None else backoff_s
    with part_path.open("ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"{part_path} is being written by another fetch") from None
        except OSError:  # a filesystem without locks (some network mounts): go on unlocked
            log.debug("%s: no file lock on this filesystem", part_path)
        part = _Part(part_path, handle)
        for attempt in range(1, attempts + 1):
            try:
                _attempt(
                    session,
                    url,
                    part,
                    headers=headers,
                    expected_size=expected_size,
                    timeout_s=timeout_s,
                    auth_help=auth_help,
                    bar=bar,
                )
                break
            except _Retry as exc:
                if attempt == attempts:
                    raise DownloadError(f"gave up after {attempts} attempts; last: {exc}") from None
                delay = min(backoff * 2 ** (attempt - 1), BACKOFF_MAX_S)
                log.warning("%s: %s; attempt %d of %d in %.1f s", part.name, exc, attempt + 1, attempts, delay)
                time.sleep(delay)
        part.catch_up()
        os.fsync(handle.fileno())
        return part.hasher.hexdigest(), part.size()
