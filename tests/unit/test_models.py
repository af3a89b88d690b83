"""The model fetcher against a real local HTTP server (aiohttp in a thread) serving generated files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from handler.models import download
from handler.models import fetch as models
from handler.models.manifest import ManifestError, load
from handler.settings import Settings

TOKEN = "civ-Secret-0123456789abcdef"
FAST = Settings(fetch_attempts=3, fetch_timeout_s=5)


def blob(seed: int, size: int = 300_000) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Served:
    body: bytes
    token: str | None = None  # bearer token the server requires
    fail: int = 0  # answer 503 this many times first
    truncate: int = 0  # cut this many bodies off halfway
    stall: int = 0  # stop sending halfway through this many bodies, for a second
    ignore_range: bool = False
    status: int | None = None  # always answer this status
    content_type: str = "application/octet-stream"
    redirect: str | None = None  # 302 to this URL


@dataclass
class Seen:
    name: str
    range: str | None
    authorization: str | None
    sent: int = 0


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"

    def requests(self, name: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.name == name]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        seen = Seen(name, request.headers.get("Range"), request.headers.get("Authorization"))
        self.seen.append(seen)
        served = self.files.get(name)
        if served is None:
            return web.Response(status=404)
        if served.redirect:
            raise web.HTTPFound(served.redirect)
        if served.status:
            return web.Response(status=served.status)
        if served.fail > 0:
            served.fail -= 1
            return web.Response(status=503)
        if served.token and seen.authorization != f"Bearer {served.token}":
            return web.Response(status=401, text="unauthorized")
        body, start, headers, status = served.body, 0, {}, 200
        match = re.fullmatch(r"bytes=(\d+)-", seen.range or "")
        if match and not served.ignore_range:
            start, status = int(match[1]), 206
            if start >= len(body):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        chunk = body[start:]
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(chunk)
        response.content_type = served.content_type
        await response.prepare(request)
        if served.stall > 0:
            served.stall -= 1
            await response.write(chunk[: len(chunk) // 2])
            seen.sent = len(chunk) // 2
            await asyncio.sleep(1.0)
            return response
        if served.truncate > 0:
            served.truncate -= 1
            chunk = chunk[: len(chunk) // 2]
            await response.write(chunk)
            seen.sent = len(chunk)
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(chunk)
        seen.sent = len(chunk)
        await response.write_eof()
        return response


@pytest.fixture
def server() -> Iterator[FileServer]:
    files = FileServer()
    app = web.Application()
    app.router.add_get("/{name}", files.handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    files.port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield files
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    monkeypatch.setattr(download, "CHUNK", 5000)  # a cut-off read loses its chunk; cuts fall on chunk bounds
    monkeypatch.setattr(download, "PROGRESS_EVERY_S", 0.0)  # a progress log line per chunk
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def entry(
    name: str,
    body: bytes | None,
    urls: list[Any],
    *,
    folder: str = "layer_model",
    auth: str | None = None,
    size: bool = True,
) -> dict[str, Any]:
    return {
        "name": name,
        "folder": folder,
        "size": len(body) if body is not None and size else None,
        "sha256": sha(body) if body is not None else None,
        "urls": urls,
        "auth": auth,
    }


def manifest(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": list(entries)}))
    return path


def run(command: str, path: Path, dest: Path, settings: Settings = FAST, *extra: str) -> int:
    return models.main([command, "--manifest", str(path), "--dest", str(dest), *extra], settings=settings)


def test_fetch_downloads_verifies_and_renames(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = blob(1), blob(2, 200_000)
    server.files.update({"a.bin": Served(a), "b.bin": Served(b)})
    path = manifest(
        tmp_path,
        entry("a.bin", a, [server.url("a.bin")], folder="checkpoints"),
        entry("b.bin", b, [server.url("b.bin")]),
    )
    dest = tmp_path / "models"
    assert run("fetch", path, dest) == 0
    assert (dest / "checkpoints" / "a.bin").read_bytes() == a
    assert (dest / "layer_model" / "b.bin").read_bytes() == b
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["a.bin", "b.bin"]
    out = capsys.readouterr().out
    assert "FETCHED   checkpoints/a.bin" in out and "FETCHED   layer_model/b.bin" in out
    assert [seen.range for seen in server.seen] == [None, None]


def test_checksum_mismatch_fails_and_leaves_nothing(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served, pinned = blob(3), blob(4)
    server.files["m.bin"] = Served(served)
    path = manifest(tmp_path, entry("m.bin", pinned, [server.url("m.bin")]))
    assert run("fetch", path, tmp_path) == 1
    assert not (tmp_path / "layer_model" / "m.bin").exists()
    assert not (tmp_path / "layer_model" / "m.bin.part").exists()
    out = capsys.readouterr().out
    assert "FAILED    layer_model/m.bin" in out
    assert f"expected {sha(pinned)}, got {sha(served)}" in out


def test_token_is_required_sent_and_never_logged(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    body = blob(5)
    server.files["t.bin"] = Served(body, token=TOKEN)
    path = manifest(tmp_path, entry("t.bin", body, [server.url("t.bin")], auth="civitai"))
    assert run("fetch", path, tmp_path) == 1
    assert "set CIVITAI_TOKEN (or CIVITAI_TOKEN_FILE" in capsys.readouterr().out
    assert server.seen[-1].authorization is None

    settings = FAST.replace(civitai_token=TOKEN)
    assert run("fetch", path, tmp_path, settings) == 0
    assert (tmp_path / "layer_model" / "t.bin").read_bytes() == body
    assert server.seen[-1].authorization == f"Bearer {TOKEN}"
    assert "with the civitai token" in caplog.text and "MB" in caplog.text  # logged, progress included
    assert TOKEN not in caplog.text and TOKEN not in capsys.readouterr().out
    assert TOKEN not in repr(settings)


def test_refused_token_and_token_file(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = blob(6)
    server.files["t.bin"] = Served(body, token=TOKEN)
    path = manifest(tmp_path, entry("t.bin", body, [server.url("t.bin")], auth="huggingface"))
    assert run("fetch", path, tmp_path, FAST.replace(hf_token="wrong-token")) == 1
    out = capsys.readouterr().out
    assert "HTTP 401" in out and "token from HF_TOKEN (or HF_TOKEN_FILE) was refused" in out
    assert "wrong-token" not in out
    secret = tmp_path / "hf_token"
    secret.write_text(TOKEN + "\n")  # a BuildKit secret file
    assert run("fetch", path, tmp_path, FAST.replace(hf_token_file=secret)) == 0
    assert server.seen[-1].authorization == f"Bearer {TOKEN}"
    assert run("fetch", path, tmp_path / "x", FAST.replace(hf_token_file=tmp_path / "absent")) == 1  # no token
    assert server.seen[-1].authorization is None
    secret.write_text("two words")
    assert run("fetch", path, tmp_path / "y", FAST.replace(hf_token_file=secret)) == 2
    assert "two words" not in capsys.readouterr().out


def test_token_is_not_forwarded_to_another_host(server: FileServer, tmp_path: Path) -> None:
    body = blob(7)
    server.files.update(
        {"r.bin": Served(body, redirect=server.url("cdn.bin", host="localhost")), "cdn.bin": Served(body)}
    )
    path = manifest(tmp_path, entry("r.bin", body, [server.url("r.bin")], auth="civitai"))
    assert run("fetch", path, tmp_path, FAST.replace(civitai_token=TOKEN)) == 0
    assert (tmp_path / "layer_model" / "r.bin").read_bytes() == body
    assert [(s.name, s.authorization) for s in server.seen] == [("r.bin", f"Bearer {TOKEN}"), ("cdn.bin", None)]


def test_truncated_bodies_are_retried_by_resuming(server: FileServer, tmp_path: Path) -> None:
    body = blob(8)
    server.files["c.bin"] = Served(body, truncate=2, fail=0)
    path = manifest(tmp_path, entry("c.bin", body, [server.url("c.bin")]))
    assert run("fetch", path, tmp_path) == 0
    assert (tmp_path / "layer_model" / "c.bin").read_bytes() == body
    seen = server.requests("c.bin")
    assert [s.range for s in seen] == [None, "bytes=150000-", "bytes=225000-"]
    assert sum(s.sent for s in seen) == len(body)  # nothing was transferred twice


def test_endless_truncation_and_5xx_fail_clearly(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = blob(9)
    server.files.update({"c.bin": Served(body, truncate=99), "e.bin": Served(body, fail=99)})
    path = manifest(tmp_path, entry("c.bin", body, [server.url("c.bin")]), entry("e.bin", body, [server.url("e.bin")]))
    assert run("fetch", path, tmp_path) == 1
    out = capsys.readouterr().out
    assert re.search(
        r"FAILED +layer_model/c.bin: 127.0.0.1:\d+: gave up after 3 attempts; "
        r"last: the body was cut off at byte \d+ of 300000",
        out,
    )
    assert "FAILED    layer_model/e.bin" in out and "last: HTTP 503" in out
    assert len(server.requests("c.bin")) == 3 and len(server.requests("e.bin")) == 3
    assert not (tmp_path / "layer_model" / "c.bin").exists()
    assert (tmp_path / "layer_model" / "c.bin.part").stat().st_size > 0  # kept for the next run to resume


def test_stalled_body_times_out_and_resumes(server: FileServer, tmp_path: Path) -> None:
    body = blob(23)
    server.files["s.bin"] = Served(body, stall=1)
    path = manifest(tmp_path, entry("s.bin", body, [server.url("s.bin")]))
    assert run("fetch", path, tmp_path, FAST.replace(fetch_timeout_s=0.2)) == 0
    assert (tmp_path / "layer_model" / "s.bin").read_bytes() == body
    assert [s.range for s in server.seen] == [None, "bytes=150000-"]


def test_5xx_then_success(server: FileServer, tmp_path: Path) -> None:
    body = blob(10)
    server.files["e.bin"] = Served(body, fail=2)
    path = manifest(tmp_path, entry("e.bin", body, [server.url("e.bin")]))
    assert run("fetch", path, tmp_path) == 0
    assert (tmp_path / "layer_model" / "e.bin").read_bytes() == body


def test_resume_sends_range_and_transfers_only_the_rest(server: FileServer, tmp_path: Path) -> None:
    body = blob(11)
    server.files["p.bin"] = Served(body)
    (tmp_path / "layer_model").mkdir()
    (tmp_path / "layer_model" / "p.bin.part").write_bytes(body[:120_000])
    path = manifest(tmp_path, entry("p.bin", body, [server.url("p.bin")]))
    assert run("fetch", path, tmp_path) == 0
    assert (tmp_path / "layer_model" / "p.bin").read_bytes() == body
    assert [(s.range, s.sent) for s in server.seen] == [("bytes=120000-", len(body) - 120_000)]
    assert not (tmp_path / "layer_model" / "p.bin.part").exists()


def test_server_ignoring_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    body = blob(12)
    server.files["i.bin"] = Served(body, ignore_range=True)
    (tmp_path / "layer_model").mkdir()
    (tmp_path / "layer_model" / "i.bin.part").write_bytes(b"\0" * 120_000)  # would corrupt if appended to
    path = manifest(tmp_path, entry("i.bin", body, [server.url("i.bin")]))
    assert run("fetch", path, tmp_path) == 0
    assert (tmp_path / "layer_model" / "i.bin").read_bytes() == body
    assert [(s.range, s.sent) for s in server.seen] == [("bytes=120000-", len(body))]


def test_complete_part_with_unknown_size_is_not_downloaded_again(server: FileServer, tmp_path: Path) -> None:
    body = blob(13)
    server.files["d.bin"] = Served(body)
    (tmp_path / "layer_model").mkdir()
    (tmp_path / "layer_model" / "d.bin.part").write_bytes(body)  # stopped before the rename
    path = manifest(tmp_path, entry("d.bin", body, [server.url("d.bin")], size=False))
    assert run("fetch", path, tmp_path) == 0
    assert (tmp_path / "layer_model" / "d.bin").read_bytes() == body
    assert [(s.range, s.sent) for s in server.seen] == [(f"bytes={len(body)}-", 0)]  # answered 416


def test_present_files_are_verified_not_downloaded(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, wrong = blob(14), blob(15)
    server.files.update({"g.bin": Served(good), "w.bin": Served(good)})
    (tmp_path / "layer_model").mkdir()
    (tmp_path / "layer_model" / "g.bin").write_bytes(good)
    (tmp_path / "layer_model" / "w.bin").write_bytes(wrong)
    path = manifest(tmp_path, entry("g.bin", good, [server.url("g.bin")]), entry("w.bin", good, [server.url("w.bin")]))
    assert run("fetch", path, tmp_path) == 1
    assert server.seen == []
    out = capsys.readouterr().out
    assert "OK        layer_model/g.bin: verified" in out
    assert f"BAD       layer_model/w.bin: sha256 mismatch: expected {sha(good)}, got {sha(wrong)}" in out
    assert "remove" in out
    assert (tmp_path / "layer_model" / "w.bin").read_bytes() == wrong  # never replaced


def test_check_reports_missing_and_corrupt_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok, missing, corrupt, short = blob(16), blob(17), blob(18), blob(19)
    nowhere = "http://127.0.0.1:9/never"
    path = manifest(
        tmp_path,
        entry("ok.bin", ok, [nowhere], folder="checkpoints"),
        entry("missing.bin", missing, [nowhere]),
        entry("corrupt.bin", corrupt, [nowhere]),
        entry("short.bin", short, [nowhere]),
    )
    dest = tmp_path / "volume"
    (dest / "checkpoints").mkdir(parents=True)
    (dest / "layer_model").mkdir()
    (dest / "checkpoints" / "ok.bin").write_bytes(ok)
    (dest / "layer_model" / "corrupt.bin").write_bytes(corrupt[:-1] + b"!")
    (dest / "layer_model" / "short.bin").write_bytes(short[:1000])
    assert run("check", path, dest) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"OK        checkpoints/ok.bin: verified, {len(ok)} bytes"
    assert lines[1] == "MISSING   layer_model/missing.bin"
    assert lines[2].startswith(f"BAD       layer_model/corrupt.bin: sha256 mismatch: expected {sha(corrupt)}, got ")
    assert lines[3] == f"BAD       layer_model/short.bin: size mismatch: expected {len(short)} bytes, got 1000"
    assert run("check", path, dest, FAST, "--only", "ok.bin") == 0


def test_unknown_sha256_is_reported_for_pinning(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = blob(20)
    server.files["u.bin"] = Served(body)
    unpinned = {**entry("u.bin", body, [server.url("u.bin")]), "sha256": None, "size": None}
    path = manifest(tmp_path, unpinned)
    assert run("fetch", path, tmp_path) == 0
    assert (tmp_path / "layer_model" / "u.bin").read_bytes() == body
    out = capsys.readouterr().out
    assert f"UNPINNED  layer_model/u.bin: sha256 {sha(body)} size {len(body)} (not pinned" in out
    assert run("check", path, tmp_path) == 0
    assert f"sha256 {sha(body)}" in capsys.readouterr().out


def test_next_url_is_tried_when_one_fails(server: FileServer, tmp_path: Path) -> None:
    body = blob(21)
    server.files.update(
        {
            "gone.bin": Served(body, status=404),
            "html.bin": Served(body, content_type="text/html"),
            "mirror.bin": Served(body),
        }
    )
    urls = [server.url("gone.bin"), server.url("html.bin"), {"url": server.url("mirror.bin"), "auth": "huggingface"}]
    path = manifest(tmp_path, entry("f.bin", body, urls, auth="civitai"))
    settings = FAST.replace(civitai_token=TOKEN, hf_token="hf-other")
    assert run("fetch", path, tmp_path, settings) == 0
    assert (tmp_path / "layer_model" / "f.bin").read_bytes() == body
    assert [(s.name, s.authorization) for s in server.seen] == [
        ("gone.bin", f"Bearer {TOKEN}"),
        ("html.bin", f"Bearer {TOKEN}"),
        ("mirror.bin", "Bearer hf-other"),
    ]


def test_local_write_errors_fail_without_trying_other_urls(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = blob(24)
    server.files["w.bin"] = Served(body)
    (tmp_path / "layer_model").write_text("a file where the folder should be")
    path = manifest(tmp_path, entry("w.bin", body, [server.url("w.bin"), server.url("w.bin")]))
    assert run("fetch", path, tmp_path) == 1
    assert "FAILED    layer_model/w.bin: cannot write" in capsys.readouterr().out
    assert server.seen == []


def test_announced_size_mismatch_fails_before_the_body(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = blob(22)
    server.files["s.bin"] = Served(body)
    path = manifest(tmp_path, {**entry("s.bin", body, [server.url("s.bin")]), "size": len(body) + 1})
    assert run("fetch", path, tmp_path) == 1
    assert f"the server offers {len(body)} bytes but the manifest pins {len(body) + 1}" in capsys.readouterr().out
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "ABC"}, "sha256 must be 64 lowercase hex digits"),
        ({"name": "../x"}, "name must be a plain file"),
        ({"auth": "github"}, "auth must be one of"),
        ({"urls": []}, "urls must be a non-empty list"),
        ({"urls": ["ftp://x"]}, "http(s) URL"),
        ({"size": -1}, "size must be a positive number"),
        ({"modes": ["foreground"]}, "modes needs optional: true"),
        ({"modes": [], "optional": True}, "modes must be a non-empty list"),
        ({"modes": ["Fore ground"], "optional": True}, "modes must be a non-empty list of lowercase mode names"),
    ],
)
def test_bad_manifest_entries_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = manifest(tmp_path, {**entry("a.bin", b"a", ["https://example.invalid/a"]), **change})
    with pytest.raises(ManifestError, match=re.escape(message)):
        load(path)
    assert run("check", path, tmp_path) == 2


def test_the_shipped_manifest_loads() -> None:
    entries = {entry.label: entry for entry in load() if not entry.optional}
    assert set(entries) == {
        "checkpoints/juggernautXL_version6Rundiffusion.safetensors",
        "layer_model/layer_xl_transparent_attn.safetensors",
        "layer_model/vae_transparent_decoder.safetensors",
    }
    jugg = entries["checkpoints/juggernautXL_version6Rundiffusion.safetensors"]
    assert jugg.sources[0].url.endswith("/api/download/models/198530")  # the model page's own download
    assert jugg.sources[0].auth == "civitai"
    assert all(entry.sha256 for entry in entries.values())
    optional = {entry.label: entry.modes for entry in load() if entry.optional}
    assert optional == {
        "layer_model/layer_xl_transparent_conv.safetensors": (),  # the conv variant's file, on demand
        # A layer mode's two passes: given a background (foreground mode), or a foreground (background mode).
        "layer_model/layer_xl_bg2ble.safetensors": ("foreground",),
        "layer_model/layer_xl_bgble2fg.safetensors": ("foreground",),
        "layer_model/layer_xl_fg2ble.safetensors": ("background",),
        "layer_model/layer_xl_fgble2bg.safetensors": ("background",),
    }
    layer_files = [entry for entry in load() if entry.modes]
    assert all(entry.sha256 and entry.sources[0].url.endswith("/" + entry.name) for entry in layer_files)


def test_optional_entries_only_when_named(server: FileServer, tmp_path: Path) -> None:
    body = blob(3)
    server.files["opt.bin"] = Served(body)
    path = manifest(tmp_path, {**entry("opt.bin", body, [server.url("opt.bin")]), "optional": True})
    dest = tmp_path / "models"
    assert run("fetch", path, dest) == 0
    assert not (dest / "layer_model" / "opt.bin").exists() and server.seen == []
    assert run("fetch", path, dest, FAST, "--only", "opt.bin") == 0
    assert (dest / "layer_model" / "opt.bin").read_bytes() == body


def test_mode_entries_only_when_their_mode_is_named(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, fg, bg, conv = blob(31), blob(32), blob(33), blob(34)
    server.files.update({n: Served(b) for n, b in (("base", base), ("fg", fg), ("bg", bg), ("conv", conv))})
    path = manifest(
        tmp_path,
        entry("base", base, [server.url("base")]),
        {**entry("fg", fg, [server.url("fg")]), "optional": True, "modes": ["foreground"]},
        {**entry("bg", bg, [server.url("bg")]), "optional": True, "modes": ["background"]},
        {**entry("conv", conv, [server.url("conv")]), "optional": True},
    )
    dest = tmp_path / "models"

    def fetched(*extra: str) -> list[str]:
        assert run("fetch", path, dest, FAST, *extra) == 0
        return sorted(p.name for p in (dest / "layer_model").iterdir())

    assert fetched("--modes", "") == ["base"]  # an empty build argument asks for no mode
    assert fetched("--modes", "foreground") == ["base", "fg"]
    assert fetched("--modes=foreground, background", "--only", "conv") == ["base", "bg", "conv", "fg"]
    assert [s.name for s in server.seen] == ["base", "fg", "bg", "conv"]  # each downloaded once
    capsys.readouterr()
    assert run("check", path, dest, FAST, "--modes", "background") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"OK        layer_model/base: verified, {len(base)} bytes",
        f"OK        layer_model/bg: verified, {len(bg)} bytes",
    ]


def test_an_unknown_mode_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = blob(35)
    path = manifest(tmp_path, {**entry("fg", body, ["https://example.invalid/fg"]), "optional": True, "modes": ["fg"]})
    assert run("fetch", path, tmp_path, FAST, "--modes", "foreground") == 2
    assert "unknown layer mode(s): foreground (the manifest has fg)" in caplog.text
    assert not (tmp_path / "layer_model").exists()


def test_terminal_progress_bar(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = blob(25)
    server.files["bar.bin"] = Served(body)
    [spec] = load(manifest(tmp_path, entry("bar.bin", body, [server.url("bar.bin")])))
    fetcher = models.Fetcher(tmp_path, {}, timeout_s=5, attempts=1, bar=True)
    try:
        assert fetcher.fetch(spec).status == "fetched"
    finally:
        fetcher.close()
    assert (tmp_path / "layer_model" / "bar.bin").read_bytes() == body
    assert "bar.bin" in capsys.readouterr().err  # tqdm draws on stderr
