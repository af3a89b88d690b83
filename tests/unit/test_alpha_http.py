"""The alpha API's HTTP layer on a real aiohttp server: file serving under attack, the token, the body
limit, error shapes and the OpenAPI document. ComfyUI is not needed here (its port is closed), which
also shows what happens when it is down; tests/integration/test_alpha_api.py runs real jobs."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from handler.doors.alpha import openapi
from handler.doors.alpha.server import GENERATOR, STORE, create_app
from handler.doors.alpha.store import ImageStore
from handler.errors import AlphaError, statuses
from handler.generate import Generator
from handler.paths import REPO
from handler.settings import Settings
from tests.helpers import Reply, ServerThread, assert_error, free_port, http, raw_get, raw_request

TOKEN = "unit-test-token-0123456789"
SECRET = b"TOP-SECRET-" + uuid.uuid4().hex.encode()


def png_with(text: bytes) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("marker", text.decode())
    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 255, 0, 100)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def settings_for(tmp_path: Path, **changes: object) -> Settings:
    return Settings().replace(comfyui_port=free_port(), serve_dir=tmp_path / "served", **changes)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(create_app(Generator(settings_for(tmp_path)))) as running:
        yield running


def hexname(extension: str = "png") -> str:
    return f"alpha_{uuid.uuid4().hex}.{extension}"


def webp_with(secret: bytes) -> bytes:
    """A lossless WebP whose pixels carry ``secret`` (so serving it would leak it)."""
    out = io.BytesIO()
    Image.frombytes("L", (len(secret), 1), secret).convert("RGBA").save(out, format="WEBP", lossless=True)
    return out.getvalue()


@pytest.fixture
def planted(server: ServerThread, tmp_path: Path) -> dict[str, str]:
    """A served file, and traps: secrets and PNGs outside the folder, symlinks and non-PNGs inside it."""
    store: ImageStore = server.app[STORE]
    root = store.root
    names = {
        "good": hexname(),
        "outside_png": hexname(),
        "symlink_out": hexname(),
        "symlink_in": hexname(),
        "not_png": hexname(),
        "directory": hexname(),
        "fifo": hexname(),
        "good_webp": hexname("webp"),
        "png_as_webp": hexname("webp"),
        "outside_webp": hexname("webp"),
        "symlink_webp": hexname("webp"),
    }
    store.save(names["good"], png_with(b"the served file"))
    store.save(names["good_webp"], webp_with(b"the served webp"))
    (root / names["png_as_webp"]).write_bytes(png_with(SECRET))
    (tmp_path / names["outside_webp"]).write_bytes(webp_with(SECRET))
    (root / names["symlink_webp"]).symlink_to(tmp_path / names["outside_webp"])
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / names["outside_png"]).write_bytes(png_with(SECRET))
    (root / names["symlink_out"]).symlink_to(tmp_path / names["outside_png"])
    (root / names["symlink_in"]).symlink_to(root / names["good"])
    (root / names["not_png"]).write_bytes(SECRET)
    (root / "notes.txt").write_bytes(SECRET)
    (root / names["directory"]).mkdir()
    os.mkfifo(root / names["fifo"])
    names["outside_abs"] = str(tmp_path / names["outside_png"])
    return names


def attack_corpus(n: dict[str, str]) -> list[bytes]:
    q = urllib.parse.quote
    good, out = n["good"], n["outside_png"]
    corpus = [
        "../secret.txt",
        "..%2fsecret.txt",
        "..%2Fsecret.txt",
        "%2e%2e%2fsecret.txt",
        "%2e%2e/secret.txt",
        ".%2e/secret.txt",
        "..%252fsecret.txt",
        "%252e%252e%252fsecret.txt",
        "..%c0%afsecret.txt",
        "%c0%ae%c0%ae%c0%afsecret.txt",
        "%e0%80%ae%e0%80%ae/secret.txt",
        "..\\secret.txt",
        "..%5csecret.txt",
        "%2e%2e%5c" + out,
        "..%2f" + out,
        "../" + out,
        "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        q(n["outside_abs"], safe=""),
        "file:%2f%2f%2fetc%2fpasswd",
        "%ef%bc%8e%ef%bc%8e%ef%bc%8fsecret.txt",
        good + "%00",
        good + "%00.png",
        "secret.txt%00" + good,
        "a" * 300 + ".png",
        "alpha_" + "0" * 3000 + ".png",
        good + ".",
        good + "%20",
        good + "%2e",
        good + "/",
        good.upper(),
        good + "%2f..%2f..%2fsecret.txt",
        good + ";.txt",
        n["symlink_out"],
        n["symlink_in"],
        n["not_png"],
        "notes.txt",
        n["directory"],
        n["fifo"],
        n["png_as_webp"],
        n["symlink_webp"],
        n["outside_webp"],
        n["good_webp"][:-5] + ".png",
        n["good_webp"] + ".png",
        out,
        "",
        ".",
        "..",
        "%2e%2e",
    ]
    return [b"/alpha/v1/file/" + c.encode() for c in corpus] + [
        b"/alpha/v1/file/" + good.encode()[:-4] + b"\x00.png",  # a raw NUL byte
        b"/alpha/v1/file/..\xc0\xafsecret.txt",  # raw overlong UTF-8
        b"/alpha/v1/" + b"../" * 8 + b"etc/passwd",
        b"/alpha/v1/file/%2e%2e%2f%2e%2e%2f%2e%2e%2f" + n["outside_abs"].encode(),
    ]


def test_traversal_corpus_serves_nothing_outside(server: ServerThread, planted: dict[str, str], tmp_path: Path) -> None:
    corpus = attack_corpus(planted)
    assert len(corpus) >= 30
    forbidden = [SECRET, (tmp_path / planted["outside_png"]).read_bytes(), b"root:x:0:0"]
    forbidden.append((tmp_path / planted["outside_webp"]).read_bytes())
    not_found_bodies = set()
    for target in corpus:
        reply = raw_get(server.port, target)
        assert reply.status in (400, 404), (target, reply.status)
        assert not any(f in reply.body for f in forbidden), target
        assert not reply.body.startswith((b"\x89PNG", b"RIFF")), target
        if reply.status == 404:
            not_found_bodies.add(reply.body)
    # Every refusal looks the same: no hint of what exists.
    assert len(not_found_bodies) == 1
    assert_error(json.loads(not_found_bodies.pop()), "not_found", None)
    control = raw_get(server.port, b"/alpha/v1/file/" + planted["good"].encode())
    assert control.status == 200 and control.body == png_with(b"the served file")


def test_file_headers_and_head(server: ServerThread, planted: dict[str, str]) -> None:
    url = f"{server.url}/alpha/v1/file/{planted['good']}"
    get = http("GET", url)
    assert get.status == 200 and get.headers["Content-Type"] == "image/png"
    assert int(get.headers["Content-Length"]) == len(get.body) == len(png_with(b"the served file"))
    assert get.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert get.headers["X-Content-Type-Options"] == "nosniff"
    head = http("HEAD", url)
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert head.headers["Content-Type"] == "image/png"


def test_a_webp_is_served_as_webp(server: ServerThread, planted: dict[str, str]) -> None:
    url = f"{server.url}/alpha/v1/file/{planted['good_webp']}"
    for method in ("GET", "HEAD"):
        reply = http(method, url)
        assert reply.status == 200 and reply.headers["Content-Type"] == "image/webp", method
        assert reply.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert http("GET", url).body == webp_with(b"the served webp")


def error(reply: Reply, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert reply.status == status == statuses()[code], (reply.status, reply.body[:300])
    return assert_error(reply.json(), code, field)


def post(server: ServerThread, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    return http("POST", f"{server.url}/alpha/v1/txt2img", body, {"Content-Type": "application/json", **(headers or {})})


def test_error_shapes_without_comfyui(server: ServerThread) -> None:
    error(post(server, b"{not json"), 400, "invalid_input", None)
    listed = error(post(server, b'["prompt"]'), 400, "invalid_input")
    assert listed["message"] == "input must be a JSON object, got an array"
    error(post(server, b'{"prompt": "x", "steps": 3}'), 400, "invalid_input", "steps")
    assert error(post(server, b"\xff\xfe"), 400, "invalid_input")
    # Valid input, but ComfyUI is down: 503, not a crash and not a hang.
    down = error(post(server, b'{"prompt": "a cat"}'), 503, "comfyui_unavailable")
    assert "nothing listens at ws://127.0.0.1:" in str(down["message"])
    error(http("GET", f"{server.url}/alpha/v1/nowhere"), 404, "not_found")
    reply = http("DELETE", f"{server.url}/alpha/v1/txt2img")
    error(reply, 405, "method_not_allowed")
    assert reply.headers["Allow"] == "POST"


HOST = b"Host: 127.0.0.1\r\n"
MALFORMED = {
    "not-http": (b"GARBAGE\r\n\r\n", "Invalid method encountered"),
    "bad-version": (b"GET /alpha/v1/health HTTP/9.9\r\n" + HOST + b"\r\n", "Bad status line"),
    "header-token": (b"GET /alpha/v1/health HTTP/1.1\r\n" + HOST + b"Bad Header: x\r\n\r\n", "Invalid header token"),
    "nul-in-token": (
        b"GET /alpha/v1/health HTTP/1.1\r\n" + HOST + b"Authorization: Bearer " + SECRET + b"\x00\r\n\r\n",
        "Invalid header value char",
    ),
    "line-too-long": (
        b"GET /alpha/v1/health HTTP/1.1\r\n" + HOST + b"X: " + SECRET * 300 + b"\r\n\r\n",
        "Got more than 8190",
    ),
    "two-lengths": (
        b"POST /alpha/v1/txt2img HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "Duplicate Content-Length",
    ),
    "bad-chunk": (
        b"POST /alpha/v1/txt2img HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
        "Invalid character in chunk size",
    ),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_what_aiohttps_parser_refuses_is_answered_in_the_error_shape(
    server: ServerThread, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp answers these itself, past the app and its middlewares (plain text, by default); the runner makes
    it answer as every error is, and neither the answer nor the log line quotes the request's bytes."""
    data, words = MALFORMED[case]
    reply = raw_request(server.port, data)
    assert reply.status == 400 and reply.headers["Content-Type"] == "application/json; charset=utf-8", reply.body
    body = assert_error(reply.json(), "bad_request", None, words=f"the HTTP request is malformed: {words}")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert SECRET not in reply.body and SECRET.decode() not in caplog.text and len(body["message"]) < 300
    assert f"refused a malformed HTTP request from 127.0.0.1: {words}" in caplog.text


def test_the_served_process_answers_them_so_too_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``python -m handler.doors.alpha.server`` (what ``bootstrap.sh serve`` runs) serves through the same runner,
    and SIGTERM stops it cleanly (exit 0)."""
    port = free_port()
    env = {**os.environ, "ALPHA_SERVE_PORT": str(port), "ALPHA_SERVE_DIR": str(tmp_path), "ALPHA_COMFYUI_PORT": "1"}
    command = [sys.executable, "-m", "handler.doors.alpha.server"]
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        reply = raw_request(port, MALFORMED["not-http"][0])
        assert reply.status == 400 and assert_error(reply.json(), "bad_request", None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        output = proc.communicate()[0].decode()
    assert "refused a malformed HTTP request from 127.0.0.1: Invalid method encountered" in output


def test_body_limit(tmp_path: Path) -> None:
    with ServerThread(create_app(Generator(settings_for(tmp_path, serve_max_body_bytes=1024)))) as server:
        big = json.dumps({"prompt": "x" * 2000}).encode()
        error(post(server, big), 413, "body_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: aiohttp's own limit must hold
            yield big

        request = urllib_request_chunked(f"{server.url}/alpha/v1/txt2img", chunks())
        error(request, 413, "body_too_large")


def urllib_request_chunked(url: str, body: Iterator[bytes]) -> Reply:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


def test_health_names_the_reason_when_comfyui_is_down(server: ServerThread) -> None:
    reply = http("GET", f"{server.url}/alpha/v1/health")
    assert reply.status == 503
    body = reply.json()
    assert body["status"] == "not_ready" and body["checks"]["comfyui"] == "no answer"
    assert "refused the connection" in body["problems"][0]


def test_token_guards_every_endpoint(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, serve_token=TOKEN)
    with ServerThread(create_app(Generator(settings))) as server:
        good = hexname()
        server.app[STORE].save(good, png_with(b"x"))
        requests = [
            ("POST", "/alpha/v1/txt2img", b'{"prompt": "a cat"}'),
            ("GET", f"/alpha/v1/file/{good}", None),
            ("HEAD", f"/alpha/v1/file/{good}", None),
            ("GET", "/alpha/v1/health", None),
            ("GET", "/alpha/v1/openapi.json", None),
            ("GET", "/alpha/v1/nowhere", None),
        ]
        for method, path, body in requests:
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token-0123456789"},
                {"Authorization": TOKEN},
                {"Authorization": f"Basic {TOKEN}"},
            ):
                reply = http(method, server.url + path, body, headers)
                assert reply.status == 401, (method, path, headers)
                assert reply.headers["WWW-Authenticate"].startswith("Bearer")
                if method != "HEAD":
                    assert_error(reply.json(), "unauthorized", None)
                assert TOKEN.encode() not in reply.body
            authorized = http(method, server.url + path, body, {"Authorization": f"Bearer {TOKEN}"})
            assert authorized.status != 401, (method, path)
        assert sorted(p.name for p in server.app[STORE].root.iterdir()) == [good], "no work was done"


def test_openapi_document_matches_the_routes(server: ServerThread) -> None:
    doc = http("GET", f"{server.url}/alpha/v1/openapi.json").json()
    sizes = server.app[GENERATOR].workflow.sizes
    assert doc == json.loads(json.dumps(openapi.document(token_required=False, sizes=sizes)))
    routes = {
        (r.resource.canonical, r.method.lower())  # type: ignore[union-attr]
        for r in server.app.router.routes()
        if r.method != "*"
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == routes
    assert set(doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]) == set(openapi.error_codes())
    schema = doc["paths"]["/alpha/v1/txt2img"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    offered = ["prompt", "negative_prompt", "seed", "width", "height", "trim", "trim_margin", "format", "mode"]
    offered += ["background", "foreground"]
    assert list(schema["properties"]) == offered, "every input field but 'delivery', which this door refuses"
    assert {
        (w, h) for w in schema["properties"]["width"]["enum"] for h in schema["properties"]["height"]["enum"]
    } >= set(sizes)


def test_every_error_code_and_its_status_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for code, status in statuses().items():
        row = f"| `{code}` | {status} |"
        assert row in readme, f"README.md lacks the row starting {row!r}"


def test_error_codes_are_unique_per_class() -> None:
    seen: dict[str, type[AlphaError]] = {}
    todo: list[type[AlphaError]] = [AlphaError]
    while todo:
        cls = todo.pop()
        if "code" in vars(cls):  # a subclass without its own code is an internal refinement of its parent's
            assert seen.setdefault(cls.code, cls) is cls, f"{cls.__name__} reuses {cls.code}"
        todo += cls.__subclasses__()


def test_every_status_a_job_can_end_with_is_a_documented_response() -> None:
    """The txt2img operation's responses cover every error status but the routing ones (404, 405)."""
    doc = openapi.document(token_required=False, sizes=[(1024, 1024)])
    documented = {int(status) for status in doc["paths"]["/alpha/v1/txt2img"]["post"]["responses"]}
    assert set(statuses().values()) - {404, 405} <= documented
