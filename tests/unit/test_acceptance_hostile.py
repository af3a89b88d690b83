"""The acceptance run against endpoints that misbehave (``tests/hostile_endpoint.py``, a loopback stand-in): every
bad answer becomes a failed check in a written report, exit code 1 and no traceback; the API key goes to the
endpoint's own origin only and never through a redirect; ``--job-timeout`` bounds a job to its last byte;
``--out`` is checked before the first request."""

from __future__ import annotations

import base64
import html
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handler.acceptance import transport
from handler.acceptance.__main__ import main
from handler.acceptance.transport import ApiError, Budget, Http
from handler.paths import REPO
from tests.hostile_endpoint import Hostile, Script, Seen, json_response, response
from tests.layer_images import png_header

KEY = "rpa_" + uuid.uuid4().hex
HOSTED = "/v2/abc123"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCEPTANCE_HOSTILE_KEY", KEY)


def run(endpoint: str, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """The tool on one prompt, in-process; its exit code, report.json and report.html."""
    tmp_path.mkdir(exist_ok=True)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a glass apple\n")
    out = tmp_path / "out"
    args = ["--endpoint", endpoint, "--api-key-env", "ACCEPTANCE_HOSTILE_KEY", "--out", str(out)]
    code = main([*args, "--prompts", str(prompts), "--poll-interval", "0", "--job-timeout", "10", *extra])
    return code, json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def failures(report: dict[str, Any], page: str) -> list[dict[str, str]]:
    """Per case, the failed criteria and their details; each is on the page too."""
    found = []
    for case in report["cases"]:
        failed = {c["name"]: c["detail"] for c in case["criteria"] if c["ok"] is False}
        for name, detail in failed.items():
            assert html.escape(detail) in page, f"{name}: {detail!r} is not on the page"
        found.append(failed)
    return found


def assert_failed(
    code: int, report: dict[str, Any], page: str, err: str, *, criterion: str, words: str
) -> list[dict[str, str]]:
    """Exit 1, no traceback, and every job sent failed with ``criterion`` saying ``words`` (``delivery`` is not
    sent to the alpha API)."""
    assert code == 1 and not report["passed"] and report["cases"]
    assert "Traceback" not in err
    failed = failures(report, page)
    sent = [
        (case, found) for case, found in zip(report["cases"], failed, strict=True) if case["outcome"] != "not offered"
    ]
    assert len(sent) >= len(report["cases"]) - 1
    for case, found in sent:
        assert case["outcome"] == "fail" and words in found.get(criterion, ""), (criterion, words, found)
    return failed


def completed(output: Any, **extra: Any) -> Script:
    """RunPod's reply to ``POST /run``: the job done at once, with this output."""
    return json_response({"id": "job-1", "status": "COMPLETED", "output": output, **extra})


def data_uri_output(data: bytes) -> dict[str, Any]:
    b64 = base64.b64encode(data).decode()
    info = {"seed": 1001, "width": 1024, "height": 1024, "mode": "text", "format": "png", "mime_type": "image/png"}
    return {"status": "success", "url": "data:image/png;base64," + b64, "image_base64": b64, "info": info}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD_ANSWERS: dict[str, tuple[Script, str, str]] = {
    # name: (the answer to every request, the criterion that fails, words in its detail)
    "in_queue_without_id": (json_response({"status": "IN_QUEUE"}), "status", "no job id"),
    "status_a_list": (json_response({"id": "job-1", "status": ["IN_QUEUE"]}), "status", "a list"),
    "id_a_path": (json_response({"id": "../../other", "status": "IN_QUEUE"}), "status", "job id"),
    "malformed_status_line": ([b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}"], "status", "status line"),
    "short_body": ([b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"status": "COMPLETED"'], "status", "ended"),
    "deeply_nested_json": ([response(200, b"[" * 200_000 + b"]" * 200_000)], "status", "nested"),
    "png_claiming_30000x30000": (completed(data_uri_output(png_header(30_000, 30_000))), "format", "30000x30000"),
    "broken_chunk": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"],
        "status",
        "broken chunked",
    ),
    "huge_content_length": ([b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{"], "status", "bytes"),
    "fields_of_the_wrong_type": (
        completed(
            {"status": nested(400), "url": 7, "image_base64": ["x"], "info": {"timings_ms": nested(400)}},
            delayTime=nested(400),
            executionTime={"a": nested(400)},
        ),
        "status",
        "a list",
    ),
    "error_an_integer": (json_response({"id": "job-1", "status": "FAILED", "error": 42}), "status", "42"),
    "error_an_object": (
        json_response({"id": "job-1", "status": "FAILED", "error": {"deep": nested(400)}}),
        "status",
        "FAILED",
    ),
}


ALPHA_INFO = {"seed": 1001, "width": 1024, "height": 1024, "mode": "text", "format": "png", "mime_type": "image/png"}


def alpha_file(data: bytes) -> Any:
    """The alpha API: the job answers its file's URL, and the file is ``data``."""

    def answer(seen: Seen) -> Script:
        if seen.method == "POST":
            return json_response({"url": "/alpha/v1/file/alpha_0.png", "filename": "alpha_0.png", "info": ALPHA_INFO})
        return [response(200, data, headers={"Content-Type": "image/png"})]

    return answer


def answering(script: Script) -> Callable[[Seen], Script]:
    return lambda seen: script


def alpha_url(url: Any) -> Callable[[Seen], Script]:
    return lambda seen: json_response({"url": url, "filename": "alpha_0.png", "info": ALPHA_INFO})


ALPHA_ANSWERS: dict[str, tuple[Any, str, str]] = {
    "url_a_local_file": (alpha_url("file:///etc/passwd"), "status", "another origin"),
    "url_protocol_relative": (alpha_url("//127.0.0.1:9/alpha/v1/file/alpha_0.png"), "status", "another origin"),
    "url_a_number": (alpha_url(7), "status", "not a URL"),
    "error_an_integer": (lambda seen: json_response({"error": 42}, 500), "status", "42"),
    "error_an_object": (lambda seen: json_response({"error": {"code": [1, 2]}}, 500), "status", "HTTP 500"),
    "png_claiming_30000x30000": (alpha_file(png_header(30_000, 30_000)), "format", "30000x30000"),
    "malformed_status_line_on_the_file": (
        lambda seen: alpha_file(b"")(seen) if seen.method == "POST" else [b"HTTP/1.1 abc\r\n\r\n"],
        "status",
        "status line",
    ),
}


BAD: dict[str, dict[str, tuple[Any, str, str]]] = {
    "run": {name: (answering(script), criterion, words) for name, (script, criterion, words) in BAD_ANSWERS.items()},
    "alpha": ALPHA_ANSWERS,
}


@pytest.mark.parametrize(("api", "name"), [(api, name) for api, answers in BAD.items() for name in answers])
def test_a_bad_answer_is_a_failed_check_in_a_written_report(
    api: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RunPod's hosted API (``/run`` and ``/status``) and the alpha API, each answering every request so."""
    answer, criterion, words = BAD[api][name]
    with Hostile(answer) as endpoint:
        code, report, page = run(endpoint.url + (HOSTED if api == "run" else ""), tmp_path, "--mode", api)
    assert_failed(code, report, page, capsys.readouterr().err, criterion=criterion, words=words)


def test_a_broken_answer_to_the_detection_request_is_no_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local URL is asked whether it is the alpha API; a malformed answer means it is not."""
    with Hostile(lambda seen: [b"HTTP/1.1 abc\r\n\r\n"]) as endpoint:
        code, report, page = run(endpoint.url, tmp_path)
    assert report["mode"] == "runsync"
    assert_failed(code, report, page, capsys.readouterr().err, criterion="status", words="status line")


def test_python_m_exits_1_with_a_report_and_no_traceback(tmp_path: Path) -> None:
    """As a deployer runs it: ``python -m handler.acceptance``, a separate process."""
    out = tmp_path / "out"
    with Hostile(lambda seen: [b"HTTP/1.1 2OO OK\r\n\r\n"]) as endpoint:
        done = subprocess.run(
            [sys.executable, "-m", "handler.acceptance", "--endpoint", endpoint.url + HOSTED, "--out", str(out)],
            cwd=REPO,
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert_failed(
        done.returncode, report, (out / "report.html").read_text(), done.stderr, criterion="status", words="status line"
    )


def test_what_the_endpoint_says_is_never_printed_raw_nor_the_key_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint that echoes the key and sends terminal escape sequences: neither reaches the screen or a file."""

    def answer(seen: Seen) -> Script:
        echoed = f"\x1b[2J\x1b]0;owned\x07 your key is {seen.headers.get('authorization')}"
        return json_response({"id": "job-1", "status": "FAILED", "error": echoed})

    with Hostile(answer) as endpoint:
        code, report, _ = run(endpoint.url + HOSTED, tmp_path)
    printed = capsys.readouterr()
    assert code == 1 and "your key is" in json.dumps(report), "the test is not vacuous"
    texts = [printed.out, printed.err, *(p.read_text() for p in (tmp_path / "out").glob("report.*"))]
    assert not any(KEY in text for text in texts), "the key is redacted"
    assert not any("\x1b" in text or "\x07" in text for text in texts), "control characters are escaped"


def test_the_key_never_follows_a_redirect_to_another_origin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Hostile(lambda seen: json_response({"id": "job-1", "status": "COMPLETED"})) as other:

        def answer(seen: Seen) -> Script:
            # /run redirects (302: a client that follows it sends a GET); /runsync's /status poll redirects too.
            if seen.path.endswith("/status/job-1"):
                return [response(307, headers={"Location": f"{other.url}{HOSTED}/status/job-1"})]
            if seen.path.endswith("/runsync"):
                return json_response({"id": "job-1", "status": "IN_PROGRESS"})
            return [response(302, headers={"Location": f"{other.url}{HOSTED}/run"})]

        with Hostile(answer) as endpoint:
            for mode in ("run", "runsync"):
                code, report, page = run(endpoint.url + HOSTED, tmp_path / mode, "--mode", mode)
                assert [seen.headers.get("authorization") for seen in other.seen] == [], "nothing followed a redirect"
                assert_failed(code, report, page, capsys.readouterr().err, criterion="status", words="redirect")
    assert endpoint.seen and all(seen.headers.get("authorization") == KEY for seen in endpoint.seen)


def test_the_key_never_goes_with_an_alpha_url_on_another_origin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Hostile(alpha_file(png_header(64, 64))) as other:
        elsewhere = f"{other.url}/alpha/v1/file/alpha_0.png"

        def answer(seen: Seen) -> Script:
            return json_response({"url": elsewhere, "filename": "alpha_0.png", "info": ALPHA_INFO})

        with Hostile(answer) as endpoint:
            code, report, page = run(endpoint.url, tmp_path, "--mode", "alpha")
    assert [seen.headers.get("authorization") for seen in other.seen] == [], "nothing fetched from another origin"
    assert_failed(code, report, page, capsys.readouterr().err, criterion="status", words="another origin")
    assert endpoint.seen and all(seen.headers.get("authorization") == f"Bearer {KEY}" for seen in endpoint.seen)


def test_job_timeout_bounds_a_trickling_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every answer arrives a byte every 0.1 s (3 s in all): each read is quick, the job is not."""
    body = json.dumps({"id": "job-1", "status": "IN_QUEUE"}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    trickle: Script = [head]
    for byte in body:
        trickle += [bytes([byte]), 0.1]
    timeout = 0.5
    started = time.monotonic()
    with Hostile(lambda seen: trickle) as endpoint:
        code, report, page = run(endpoint.url + HOSTED, tmp_path, "--job-timeout", str(timeout))
    took = time.monotonic() - started
    assert took < len(report["cases"]) * (timeout + 0.5), f"{took:.1f} s for {len(report['cases'])} jobs"
    assert_failed(code, report, page, capsys.readouterr().err, criterion="status", words="--job-timeout")


@pytest.mark.parametrize("kind", ["a file", "inside a file"])
def test_a_bad_out_is_refused_before_the_first_request(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    out = taken if kind == "a file" else taken / "report"
    with Hostile(lambda seen: json_response({"id": "job-1", "status": "FAILED", "error": "x"})) as endpoint:
        code = main(["--endpoint", endpoint.url + HOSTED, "--out", str(out), "--poll-interval", "0"])
    assert code == 2 and endpoint.seen == [], "refused before any job was sent"
    err = capsys.readouterr().err
    assert "--out" in err and str(out) in err and "Traceback" not in err


def test_the_key_goes_to_the_endpoints_origin_only() -> None:
    """The transport's own rule, under the client's: a request elsewhere goes without the key."""
    with Hostile(lambda seen: json_response({})) as endpoint, Hostile(lambda seen: json_response({})) as other:
        http = Http(endpoint.url + HOSTED, {"Authorization": KEY})
        for url in (endpoint.url + "/x", endpoint.url.replace("127.0.0.1", "LOCALHOST") + "/x", other.url + "/x"):
            http.call("GET", url, Budget(10, "test"))
    assert [seen.headers.get("authorization") for seen in endpoint.seen] == [KEY, None], "localhost is another host"
    assert [seen.headers.get("authorization") for seen in other.seen] == [None]
    assert transport.origin("HTTP://Example.COM/v2/x") == ("http", "example.com", 80)
    assert transport.origin("https://example.com:8443") == ("https", "example.com", 8443)
    assert transport.origin("file:///etc/passwd") is None and transport.origin("http://h:port/") is None


def test_an_answer_is_read_up_to_the_limit_whatever_it_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "MAX_BODY_BYTES", 1000)
    no_length: Script = [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 5000]
    chunked: Script = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1388\r\n" + b"x" * 5000 + b"\r\n0\r\n\r\n"
    ]
    for script in (no_length, chunked):
        with Hostile(answering(script)) as endpoint, pytest.raises(ApiError, match="over 1000 bytes"):
            Http(endpoint.url, {}).call("GET", endpoint.url + "/", Budget(10, "test"))


def test_the_help_says_where_the_key_goes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "sent only to the endpoint's own scheme, host and port" in shown and "no redirect is ever followed" in shown
    assert "not offered" in shown and "from its submission to the last byte" in shown


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--endpoint", "ftp://127.0.0.1/v2/abc123"], "not an http or https URL"),
        (["--endpoint", "https://user:secret@127.0.0.1/v2/abc123"], "a URL with a password in it"),
        (["--endpoint", "http://127.0.0.1:9/v2/abc123", "--job-timeout", "-5"], "at least 0.001"),
        (["--endpoint", "http://127.0.0.1:9/v2/abc123", "--poll-interval", "nan"], "at least 0"),
    ],
)
def test_a_bad_endpoint_or_number_is_a_usage_error(
    args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main([*args, "--out", str(tmp_path / "out")])
    except SystemExit as exc:  # argparse's own refusal
        code = int(str(exc.code))
    err = capsys.readouterr().err
    assert code == 2 and words in err and not (tmp_path / "out" / "report.json").exists()
