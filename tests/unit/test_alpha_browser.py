"""The alpha API against a browser on the same machine, on a real aiohttp server: a web page must not be able
to drive it (simple cross-site POSTs), read it through DNS rebinding, or crash its JSON parser. ComfyUI is
down here (its port is closed), so a request that got past the guards ends in 503 `comfyui_unavailable`:
each refusal below is answered before any work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler.doors.alpha.guard import host_name
from handler.doors.alpha.server import STORE, create_app
from handler.generate import Generator
from handler.settings import Settings
from tests.helpers import Reply, ServerThread, assert_error, free_port, http, raw_request

BODY = json.dumps({"prompt": "a cat", "seed": 1}).encode()
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = Settings().replace(
        comfyui_port=free_port(),
        serve_dir=tmp_path_factory.mktemp("served"),
        serve_allowed_hosts=("alpha.internal",),
    )
    with ServerThread(create_app(Generator(settings))) as running:
        yield running


def post(server: ServerThread, body: bytes, headers: dict[str, str]) -> Reply:
    return http("POST", f"{server.url}/alpha/v1/txt2img", body, headers, timeout=30)


def refused(reply: Reply, status: int, code: str, field: str | None = None, words: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert_error(reply.json(), code, field, words=words)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain", **EVIL},
        {"Content-Type": "application/x-www-form-urlencoded", **EVIL},
        {"Content-Type": "application/json", **EVIL},
        {"Content-Type": "application/json", "Origin": "http://localhost:3000"},
        {"Content-Type": "application/json", "Origin": "null"},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"},
    ],
    ids=["text-plain", "form", "json-cross-site", "other-local-port", "null-origin", "same-site"],
)
def test_a_request_from_another_origin_is_refused(server: ServerThread, headers: dict[str, str]) -> None:
    refused(post(server, BODY, headers), 403, "cross_site_request")
    assert list(server.app[STORE].root.glob("*")) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_job_body_that_is_not_declared_json_is_refused(server: ServerThread, content_type: str) -> None:
    """What a page can send without a preflight; curl and other non-browser clients send no Origin."""
    refused(post(server, BODY, {"Content-Type": content_type}), 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/alpha/v1/health", "/alpha/v1/openapi.json", "/alpha/v1/txt2img"])
def test_a_host_it_does_not_answer_to_is_refused(server: ServerThread, path: str) -> None:
    method, body = ("POST", BODY) if path.endswith("txt2img") else ("GET", None)
    headers = {"Host": f"rebind.evil.example:{server.port}", "Content-Type": "application/json"}
    refused(http(method, server.url + path, body, headers), 403, "host_not_allowed")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Host": "localhost"},
        {"Host": "[::1]:7861"},
        {"Host": "ALPHA.internal:8080"},
        {"Origin": "SERVER", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
    ids=["plain", "localhost", "ipv6", "configured", "same-origin", "typed-url"],
)
def test_what_it_answers_to_gets_through(server: ServerThread, headers: dict[str, str]) -> None:
    if headers.get("Origin") == "SERVER":
        headers = {**headers, "Origin": server.url}
    reply = post(server, BODY, {"Content-Type": "application/json; charset=utf-8", **headers})
    refused(reply, 503, "comfyui_unavailable")  # past every guard: the job tried to reach ComfyUI


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("Origin", ["SERVER", "https://evil.example"]),  # the first one passes the check on its own
        ("Origin", ["SERVER", "SERVER"]),
        ("Sec-Fetch-Site", ["same-origin", "cross-site"]),
        ("Content-Type", ["application/json", "text/plain"]),
        ("Authorization", ["Bearer a", "Bearer b"]),
        ("Host", ["127.0.0.1", "rebind.evil.example"]),
    ],
    ids=["origin-then-evil", "origin-twice-same", "fetch-site", "content-type", "authorization", "host"],
)
def test_a_header_the_guards_read_may_come_once(server: ServerThread, name: str, values: list[str]) -> None:
    """With two, a check reads one and whatever comes next may act on the other: refused before any work."""
    lines = [f"{name}: {server.url if value == 'SERVER' else value}" for value in values]
    if name != "Host":
        lines.append(f"Host: 127.0.0.1:{server.port}")
    if name != "Content-Type":
        lines.append("Content-Type: application/json")
    lines += [f"Content-Length: {len(BODY)}", "Connection: close"]
    head = "\r\n".join(["POST /alpha/v1/txt2img HTTP/1.1", *lines, "", ""])
    reply = raw_request(server.port, head.encode() + BODY)
    assert reply.headers["Content-Type"].startswith("application/json")
    # aiohttp's parser refuses a second Host or Content-Type itself; the guard, the rest.
    words = f"Duplicate '{name}' header" if name in ("Host", "Content-Type") else f"more than one {name} header"
    refused(reply, 400, "bad_request", None, words)


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": "x", "seed": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    ],
    ids=["deep-seed", "deep-object"],
)
def test_deeply_nested_json_is_a_client_error(server: ServerThread, body: bytes) -> None:
    refused(post(server, body, {"Content-Type": "application/json"}), 400, "invalid_input", None, "nests arrays")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:7861", "127.0.0.1"),
        ("[::1]", "::1"),
        ("LocalHost:1", "localhost"),
        ("x:port", None),
        ("", None),
        ("a@b", None),
        ("a/b", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_the_guards_are_documented(tmp_path: Path) -> None:
    from handler.doors.alpha import openapi

    doc = openapi.document(token_required=False, sizes=[(1024, 1024)])
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            assert "host_not_allowed" in operation["responses"]["403"]["description"], path
    assert "unsupported_media_type" in doc["paths"]["/alpha/v1/txt2img"]["post"]["responses"]["415"]["description"]
