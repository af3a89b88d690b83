"""The local alpha API's folder of images (PNG and WebP): write atomically, prune by count and age, and read
back only what this service wrote.

Reading is where an attacker aims, so a name is served only if every check holds: it matches the
exact pattern of names we generate; its real path (symlinks resolved) is directly inside the folder;
it opens without following a symlink; it is a regular file of bounded size; and it starts with the
signature of the format its extension names. Any failure looks the same to the caller (None): no hint of
what exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
from pathlib import Path

from handler.asset import MIME_TYPES

log = logging.getLogger(__name__)

NAME = re.compile(r"alpha_[0-9a-f]{32}(?:_blended)?\.(?:png|webp)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FILE_BYTES = 64 * 2**20
TEMP_PREFIX = ".tmp-"
STALE_TEMP_S = 3600.0


def content_type(name: str) -> str:
    """The MIME type of a stored file, by the extension its name pattern allows."""
    return MIME_TYPES[name.rsplit(".", 1)[-1]]


def signed(name: str, data: bytes) -> bool:
    """Whether ``data`` starts as the format ``name``'s extension says: PNG's signature, or WebP's RIFF header."""
    if name.endswith(".webp"):
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return data.startswith(PNG_SIGNATURE)


class ImageStore:
    def __init__(self, root: Path, *, max_files: int, max_age_s: float) -> None:
        self.root = root
        self.max_files = max_files
        self.max_age_s = max_age_s

    def save(self, name: str, data: bytes) -> Path:
        """Write under a temporary name, then rename: a reader never sees half a file. Prunes afterwards."""
        if not NAME.fullmatch(name) or not signed(name, data):
            raise ValueError(f"refusing to store {name!r}: not a generated image's name and content")
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / name
        temp = self.root / f"{TEMP_PREFIX}{os.getpid()}-{name}"
        try:
            with temp.open("xb") as out:
                out.write(data)
            os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self.prune()
        return final

    def prune(self, now: float | None = None) -> int:
        """Remove our images older than max_age_s, then the oldest beyond max_files. Returns how many went."""
        now = time.time() if now is None else now
        ours: list[tuple[float, str]] = []
        removed = 0
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if NAME.fullmatch(entry.name):
                if now - mtime > self.max_age_s:
                    removed += self._remove(entry.path)
                else:
                    ours.append((mtime, entry.path))
            elif entry.name.startswith(TEMP_PREFIX) and now - mtime > STALE_TEMP_S:
                removed += self._remove(entry.path)  # left by a process killed mid-write
        ours.sort(reverse=True)
        for _, path in ours[self.max_files :]:
            removed += self._remove(path)
        if removed:
            log.info("pruned %d file(s) from %s", removed, self.root)
        return removed

    @staticmethod
    def _remove(path: str) -> int:
        try:
            os.unlink(path)
            return 1
        except OSError as exc:
            log.warning("could not prune %s: %s", path, exc.strerror)
            return 0

    def read(self, name: str) -> bytes | None:
        """The bytes of an image this store wrote, or None for anything else."""
        if not NAME.fullmatch(name):
            return None
        try:
            root = self.root.resolve(strict=True)
            path = root / name
            if path.resolve(strict=True).parent != root:
                return None
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_FILE_BYTES or not signed(name, data):
            return None
        return data
