"""``python -m handler.models fetch|check``: the production models, from the manifest.

``fetch`` downloads what is missing into ``DEST/<folder>/<name>`` (DEST: ``--dest``,
else ``ALPHA_MODELS_DIR``, else ``<ALPHA_COMFYUI_DIR>/models``). Each file streams
into ``<name>.part`` beside its final path, resumes from there, is checked against
the manifest's size and sha256 and only then renamed into place, so a final name
never holds a partial or unverified file. A file already in place is verified,
not downloaded again; if it does not match the manifest that is an error (remove
it to download it again): the fetcher never replaces a file it did not write.
An entry without a pinned sha256 is downloaded and its sha256 and size reported,
to be copied into the manifest.

Optional entries are left out unless named (``--only``) or needed by a layer
mode asked for with ``--modes foreground,background`` (an empty list asks for
none, so a build argument can pass it as is).

``check`` verifies a populated folder (a network volume, say) without
downloading. Both print one line per file on stdout and exit 1 if any file is
missing, wrong or could not be fetched (2 for a bad manifest or setting).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from handler import logs
from handler.models.download import DownloadError, download
from handler.models.manifest import MANIFEST, TOKEN_VARS, ManifestError, ModelFile, Source, load, tokens
from handler.settings import Settings, load_or_exit

log = logging.getLogger(__name__)

USER_AGENT = "layerdiffuse-alpha-fetcher/0.1"
FAILING = ("missing", "bad", "failed")


@dataclass(frozen=True)
class Outcome:
    """What happened to one file. ``status``: ok, fetched, unpinned, missing, bad or failed."""

    entry: ModelFile
    status: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.status.upper():<9} {self.entry.label}{': ' + self.detail if self.detail else ''}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(entry: ModelFile, digest: str, size: int) -> str | None:
    if entry.size is not None and size != entry.size:
        return f"size mismatch: expected {entry.size} bytes, got {size}"
    if entry.sha256 is not None and digest != entry.sha256:
        return f"sha256 mismatch: expected {entry.sha256}, got {digest}"
    return None


def _pin_hint(digest: str, size: int) -> str:
    return f"sha256 {digest} size {size} (not pinned: copy both into the manifest)"


def verify(entry: ModelFile, dest: Path) -> Outcome:
    """Check the file in place: its size first (cheap), then its sha256."""
    path = entry.path(dest)
    if not path.is_file():
        partial = path.with_name(path.name + ".part")
        return Outcome(entry, "missing", "a partial download is present" if partial.exists() else "")
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return Outcome(entry, "bad", f"size mismatch: expected {entry.size} bytes, got {size}")
    digest = sha256_file(path)
    problem = _mismatch(entry, digest, size)
    if problem is not None:
        return Outcome(entry, "bad", problem)
    if entry.sha256 is None:
        return Outcome(entry, "unpinned", _pin_hint(digest, size))
    return Outcome(entry, "ok", f"verified, {size} bytes")


def _auth_help(source: Source, sent: bool) -> str:
    if source.auth is None:
        return "the manifest names no token for this URL (set its 'auth')"
    variable, file_variable = TOKEN_VARS[source.auth]
    if sent:
        return f"the token from {variable} (or {file_variable}) was refused; check that it is valid"
    return f"set {variable} (or {file_variable}, a file holding it) to a {source.auth} token"


class Fetcher:
    def __init__(
        self,
        dest: Path,
        tokens: dict[str, str],
        *,
        timeout_s: float,
        attempts: int,
        bar: bool = False,
        backoff_s: float | None = None,
    ) -> None:
        self.dest, self.tokens = dest, tokens
        self.timeout_s, self.attempts, self.bar, self.backoff_s = timeout_s, attempts, bar, backoff_s
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def fetch(self, entry: ModelFile) -> Outcome:
        path = entry.path(self.dest)
        if path.exists():
            outcome = verify(entry, self.dest)
            if outcome.status == "bad":
                return Outcome(
                    entry,
                    "bad",
                    f"{outcome.detail}; the file was not written by this fetch, remove {path} to download it again",
                )
            return outcome
        part = path.with_name(path.name + ".part")
        failures = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for number, source in enumerate(entry.sources):
                if number and entry.sha256 is None:
                    part.unlink(missing_ok=True)  # unpinned: never join bytes from two sources
                outcome = self._from(entry, source, path, part)
                if outcome.status != "failed":
                    return outcome
                failures.append(outcome.detail)
        except OSError as exc:  # the local disk, not a source: another URL would not help
            log.error("%s: cannot write %s: %s", entry.label, part, exc.strerror or exc)
            return Outcome(entry, "failed", f"cannot write {part}: {exc.strerror or exc}")
        return Outcome(entry, "failed", " | ".join(failures))

    def _from(self, entry: ModelFile, source: Source, path: Path, part: Path) -> Outcome:
        token = self.tokens.get(source.auth) if source.auth else None
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        host = urlsplit(source.url).netloc
        log.info(
            "%s: downloading from %s%s", entry.label, source.url, f" with the {source.auth} token" if token else ""
        )
        try:
            digest, size = download(
                self.session,
                source.url,
                part,
                headers=headers,
                expected_size=entry.size,
                timeout_s=self.timeout_s,
                attempts=self.attempts,
                auth_help=_auth_help(source, bool(token)),
                bar=self.bar,
                backoff_s=self.backoff_s,
            )
        except DownloadError as exc:
            log.error("%s: %s: %s", entry.label, host, exc)
            return Outcome(entry, "failed", f"{host}: {exc}")
        problem = _mismatch(entry, digest, size)
        if problem is not None:
            part.unlink(missing_ok=True)
            log.error("%s: %s: %s; the download was deleted", entry.label, host, problem)
            return Outcome(entry, "failed", f"{host}: {problem}")
        os.replace(part, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        if entry.sha256 is None:
            log.warning("%s: downloaded, NOT PINNED: sha256 %s, size %d bytes", entry.label, digest, size)
            return Outcome(entry, "unpinned", _pin_hint(digest, size))
        log.info("%s: downloaded and verified (%d bytes)", entry.label, size)
        return Outcome(entry, "fetched", f"verified, {size} bytes from {host}")


def _select(entries: list[ModelFile], only: Sequence[str] | None, modes: Sequence[str] = ()) -> list[ModelFile]:
    """The named entries (by default every entry that is not optional), and those the given modes need."""
    unknown = sorted(set(only or ()) - {entry.name for entry in entries})
    if unknown:
        known = ", ".join(entry.name for entry in entries)
        raise ManifestError(f"not in the manifest: {', '.join(unknown)} (it lists {known})")
    known_modes = sorted({mode for entry in entries for mode in entry.modes})
    unknown = sorted(set(modes) - set(known_modes))
    if unknown:
        raise ManifestError(f"unknown layer mode(s): {', '.join(unknown)} (the manifest has {', '.join(known_modes)})")
    return [
        entry
        for entry in entries
        if (entry.name in only if only else not entry.optional) or set(entry.modes) & set(modes)
    ]


def _mode_list(value: str) -> list[str]:
    return [mode.strip() for mode in value.split(",") if mode.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handler.models", description="Download or verify the models listed in the manifest."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("fetch", "download missing files, verify every file"),
        ("check", "verify files in place, download nothing"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--manifest", type=Path, default=MANIFEST, help="default: %(default)s")
        command.add_argument(
            "--dest", type=Path, help="models folder (default: ALPHA_MODELS_DIR, else <ALPHA_COMFYUI_DIR>/models)"
        )
        command.add_argument(
            "--only",
            nargs="+",
            action="extend",
            metavar="NAME",
            help="only these file names (optional entries are fetched only when named)",
        )
        command.add_argument(
            "--modes",
            type=_mode_list,
            default=[],
            metavar="MODE,...",
            help="also the files these layer modes need (foreground, background); empty: none",
        )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = parse_args(argv)
    if settings is None:
        settings = load_or_exit()
        logs.configure(settings.log_level)
    dest = (args.dest or settings.models_dir or settings.comfyui_dir / "models").expanduser().resolve()
    try:
        entries = _select(load(args.manifest), args.only, args.modes)
        found = tokens(settings) if args.command == "fetch" else {}
    except ManifestError as exc:
        log.error("%s", exc)
        return 2
    modes = f" (layer modes: {', '.join(args.modes)})" if args.modes else ""
    log.info("%s: %d file(s) in %s%s", args.command, len(entries), dest, modes)
    if args.command == "check":
        outcomes = [verify(entry, dest) for entry in entries]
    else:
        fetcher = Fetcher(
            dest, found, timeout_s=settings.fetch_timeout_s, attempts=settings.fetch_attempts, bar=sys.stderr.isatty()
        )
        try:
            outcomes = [fetcher.fetch(entry) for entry in entries]
        finally:
            fetcher.close()
    for outcome in outcomes:
        sys.stdout.write(outcome.line() + "\n")
    failed = [outcome for outcome in outcomes if outcome.status in FAILING]
    if failed:
        log.error(
            "%s: %d of %d file(s) failed: %s",
            args.command,
            len(failed),
            len(outcomes),
            ", ".join(outcome.entry.label for outcome in failed),
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
