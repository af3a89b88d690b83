"""The model manifest (``pins/models.json``) and the tokens its sources need.

One entry per file: ``name``, ``folder`` (under ComfyUI's ``models/``), ``size``
(bytes) and ``sha256`` (either may be null: unknown, to be pinned from the
fetcher's report), ``urls`` tried in order, and ``auth``, the token kind sent to
them (``civitai``, ``huggingface`` or null). A URL may also be written as
``{"url": ..., "auth": ...}`` when a mirror needs another token than the entry.
An ``optional`` entry is fetched only when named; one with ``modes`` (the layer
modes that need it, e.g. ``["foreground"]``) also when one of those modes is.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler.paths import REPO
from handler.settings import Settings

log = logging.getLogger(__name__)

MANIFEST = REPO / "pins" / "models.json"

# Token kind -> (variable, file variable); the values come from Settings.
TOKEN_VARS = {"civitai": ("CIVITAI_TOKEN", "CIVITAI_TOKEN_FILE"), "huggingface": ("HF_TOKEN", "HF_TOKEN_FILE")}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MODE = re.compile(r"^[a-z][a-z0-9_-]*$")


class ManifestError(ValueError):
    """The manifest or a token file cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Source:
    url: str
    auth: str | None


@dataclass(frozen=True)
class ModelFile:
    name: str
    folder: str
    size: int | None
    sha256: str | None
    sources: tuple[Source, ...]
    # Needed only by a non-default workflow: fetched and checked only when named (``--only``)
    # or when one of its layer ``modes`` is (``--modes``).
    optional: bool = False
    modes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.name}"

    def path(self, dest: Path) -> Path:
        return dest / self.folder / self.name


def _auth(value: Any, where: str) -> str | None:
    if value is not None and value not in TOKEN_VARS:
        raise ManifestError(f"{where}: auth must be one of {', '.join(TOKEN_VARS)} or null, not {value!r}")
    return value  # type: ignore[no-any-return]


def _source(raw: Any, entry_auth: str | None, where: str) -> Source:
    if isinstance(raw, dict):
        url, auth = raw.get("url"), _auth(raw.get("auth"), where)
    else:
        url, auth = raw, entry_auth
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ManifestError(f"{where}: each URL must be an http(s) URL, not {url!r}")
    return Source(url, auth)


def _modes(raw: Any, optional: bool, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) and _MODE.match(m) for m in raw):
        raise ManifestError(f"{where}: modes must be a non-empty list of lowercase mode names")
    if not optional:
        raise ManifestError(f"{where}: modes needs optional: true (a default file is fetched in every mode)")
    return tuple(raw)


def _entry(raw: Any, index: int) -> ModelFile:
    where = f"models[{index}]"
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected an object")
    name, folder = raw.get("name"), raw.get("folder")
    for key, value in (("name", name), ("folder", folder)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise ManifestError(f"{where}: {key} must be a plain file or folder name, not {value!r}")
    where = f"{where} ({name})"
    size, sha256, urls = raw.get("size"), raw.get("sha256"), raw.get("urls")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise ManifestError(f"{where}: size must be a positive number of bytes or null")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256)):
        raise ManifestError(f"{where}: sha256 must be 64 lowercase hex digits or null")
    if not isinstance(urls, list) or not urls:
        raise ManifestError(f"{where}: urls must be a non-empty list")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise ManifestError(f"{where}: optional must be true or false")
    modes = _modes(raw.get("modes"), optional, where)
    entry_auth = _auth(raw.get("auth"), where)
    sources = tuple(_source(url, entry_auth, where) for url in urls)
    return ModelFile(str(name), str(folder), size, sha256, sources, optional, modes)


def load(path: Path = MANIFEST) -> list[ModelFile]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise ManifestError(f"{path}: expected an object with a 'models' list")
    entries = [_entry(raw, index) for index, raw in enumerate(models)]
    seen: set[str] = set()
    for entry in entries:
        if entry.label in seen:
            raise ManifestError(f"{path}: {entry.label} is listed twice")
        seen.add(entry.label)
    return entries


def tokens(settings: Settings) -> dict[str, str]:
    """Token kind -> token, from the variable or else its file (a missing file means none).

    Token values never appear in messages."""
    found = {}
    for kind, direct, file in (
        ("civitai", settings.civitai_token, settings.civitai_token_file),
        ("huggingface", settings.hf_token, settings.hf_token_file),
    ):
        value = direct
        if not value and file is not None:
            variable = TOKEN_VARS[kind][1]
            try:
                value = file.read_text().strip()
            except FileNotFoundError:  # an optional BuildKit secret that was not passed
                log.warning("%s: %s does not exist; fetching without a %s token", variable, file, kind)
                continue
            except OSError as exc:
                raise ManifestError(f"{variable}: cannot read {file}: {exc.strerror}") from None
            if not value or not all(33 <= ord(char) <= 126 for char in value):
                raise ManifestError(f"{variable}: {file} must hold one token of printable ASCII characters")
        if value:
            found[kind] = value
    return found
