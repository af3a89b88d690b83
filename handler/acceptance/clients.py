"""The endpoint, as a client: which API it speaks, and one job sent and waited for.

Three APIs answer the same job input: RunPod's hosted queue (``https://.../v2/<endpoint id>``: ``/run`` then
``GET /status/<id>``, or ``/runsync``, which falls back to polling when RunPod answers before the job ends),
RunPod's local API (``--rp_serve_api``: ``/runsync``) and the local alpha API (``POST /alpha/v1/txt2img``,
then the PNG from the ``url`` it answers). The API key travels in a header only.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

MODES = ("auto", "run", "runsync", "alpha")
PENDING = {"IN_QUEUE", "IN_PROGRESS"}
ALPHA_PREFIX = "/alpha/v1"
HOSTED_PATH = re.compile(r"/v2/[^/]+/?$")


class ApiError(Exception):
    """The endpoint could not be reached, or answered with something that is not its API."""


@dataclass
class Answer:
    """What came back for one job, and how long it took."""

    status: str  # RunPod's job status (COMPLETED, FAILED, ...), or "HTTP <code>" from the alpha API
    output: Any  # the worker's output (RunPod) or the alpha API's JSON body
    error: str | None
    job_id: str | None
    latency_ms: int  # submit to result, as the client saw it
    queue_ms: int | None = None  # RunPod's delayTime: queued, cold start included
    execution_ms: int | None = None  # RunPod's executionTime
    png: bytes | None = None  # alpha API: the file its url served


class Http:
    """JSON over HTTP with the standard library; never raises for an HTTP status."""

    def __init__(self, headers: dict[str, str], timeout: float) -> None:
        self.headers = headers
        self.timeout = timeout

    def call(self, method: str, url: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data is not None else {})}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"{method} {strip_query(url)}: {reason}") from None

    def json(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        status, raw = self.call(method, url, body)
        try:
            return status, json.loads(raw)
        except ValueError:
            raise ApiError(f"{method} {strip_query(url)}: HTTP {status}, not JSON: {raw[:200]!r}") from None


def strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def detect(base: str, http: Http) -> str:
    """The API at ``base``: RunPod's hosted queue by its URL, the alpha API by its OpenAPI document, else
    RunPod's local API (``/runsync``)."""
    if HOSTED_PATH.search(urllib.parse.urlsplit(base).path):
        return "run"
    status, raw = http.call("GET", f"{base}{ALPHA_PREFIX}/openapi.json")
    if status == 200:
        return "alpha"
    try:
        code = json.loads(raw).get("code") if status in (401, 403) else None
    except (ValueError, AttributeError):
        code = None
    return "alpha" if code in ("unauthorized", "host_not_allowed") else "runsync"


class Client:
    """One job at a time against one endpoint, in one mode (``run``, ``runsync`` or ``alpha``)."""

    def __init__(self, base: str, mode: str, http: Http, *, poll_s: float, job_timeout_s: float) -> None:
        self.base = base.rstrip("/")
        self.mode = mode
        self.http = http
        self.poll_s = poll_s
        self.job_timeout_s = job_timeout_s

    def send(self, job_input: dict[str, Any]) -> Answer:
        started = time.monotonic()
        if self.mode == "alpha":
            answer = self._alpha(job_input)
        else:
            reply = self._submit(job_input)
            reply = self._wait(reply, started)
            answer = runpod_answer(reply)
        answer.latency_ms = round((time.monotonic() - started) * 1000)
        return answer

    def _submit(self, job_input: dict[str, Any]) -> dict[str, Any]:
        status, reply = self.http.json("POST", f"{self.base}/{self.mode}", {"input": job_input})
        if status != 200 or not isinstance(reply, dict) or "status" not in reply:
            raise ApiError(f"POST /{self.mode}: HTTP {status}: {str(reply)[:300]}")
        return reply

    def _wait(self, reply: dict[str, Any], started: float) -> dict[str, Any]:
        """Poll ``GET /status/<id>`` while RunPod says the job is queued or running."""
        while reply.get("status") in PENDING:
            if time.monotonic() - started > self.job_timeout_s:
                raise ApiError(f"job {reply.get('id')} still {reply['status']} after {self.job_timeout_s:.0f} s")
            time.sleep(self.poll_s)
            status, reply = self.http.json("GET", f"{self.base}/status/{reply['id']}")
            if status != 200 or not isinstance(reply, dict):
                raise ApiError(f"GET /status: HTTP {status}: {str(reply)[:300]}")
        return reply

    def _alpha(self, job_input: dict[str, Any]) -> Answer:
        status, body = self.http.json("POST", f"{self.base}{ALPHA_PREFIX}/txt2img", job_input)
        answer = Answer(f"HTTP {status}", body, None, None, 0)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("url"), str):
            answer.error = body.get("error") if isinstance(body, dict) else f"HTTP {status}"
            return answer
        file_status, png = self.http.call("GET", urllib.parse.urljoin(self.base + "/", body["url"].lstrip("/")))
        if file_status != 200:
            answer.error = f"GET {body['url']}: HTTP {file_status}"
        else:
            answer.png = png
        return answer


def runpod_answer(reply: dict[str, Any]) -> Answer:
    error = reply.get("error")
    return Answer(
        status=str(reply.get("status")),
        output=reply.get("output"),
        error=error if isinstance(error, str) or error is None else json.dumps(error),
        job_id=reply.get("id"),
        latency_ms=0,
        queue_ms=reply.get("delayTime"),
        execution_ms=reply.get("executionTime"),
    )
