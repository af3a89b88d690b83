"""The endpoint, as a client: which API it speaks, and one job sent and waited for.

Three APIs answer the same job input: RunPod's hosted queue (``https://.../v2/<endpoint id>``: ``/run`` then
``GET /status/<id>``, or ``/runsync``, which falls back to polling when RunPod answers before the job ends),
RunPod's local API (``--rp_serve_api``: ``/runsync``) and the local alpha API (``POST /alpha/v1/txt2img``,
then the files at the URLs it answers, on its own origin). The API key travels in a header, to the endpoint's
origin only (``transport``). Whatever the endpoint answers, a job ends in an ``Answer`` or an ``ApiError`` that
says what was wrong; ``--job-timeout`` bounds it from submission to the last byte.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from handler.acceptance import values
from handler.acceptance.transport import ApiError, Budget, Http, Reply, origin, shown_url

MODES = ("auto", "run", "runsync", "alpha")
PENDING = {"IN_QUEUE", "IN_PROGRESS"}
ALPHA_PREFIX = "/alpha/v1"
HOSTED_PATH = re.compile(r"/v2/[^/]+/?$")
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")  # one path segment, as RunPod's ids are
ERROR_CODE = re.compile(r"([a-z_]{1,40}): ")  # RunPod's error: "<code>: <message>"
DETECT_TIMEOUT_S = 30.0
MAX_ERROR_CHARS = 1000


@dataclass
class Answer:
    """What came back for one job, and how long it took."""

    status: str  # RunPod's job status (COMPLETED, FAILED, ...), or "HTTP <code>" from the alpha API
    output: Any  # the worker's output (RunPod) or the alpha API's JSON body, as it came: read with ``values``
    error: str | None  # printable
    job_id: str | None
    latency_ms: int  # submit to result, as the client saw it
    queue_ms: int | None = None  # RunPod's delayTime: queued, cold start included
    execution_ms: int | None = None  # RunPod's executionTime
    code: str | None = None  # the error code a failed job names (mode_unavailable, ...)
    files: dict[str, bytes] = field(default_factory=dict)  # alpha API: "image" and "blended", as its URLs served


def detect(base: str, http: Http) -> str:
    """The API at ``base``: RunPod's hosted queue by its URL, the alpha API by its OpenAPI document, else
    RunPod's local API (``/runsync``), whose jobs then say what is wrong with an endpoint that answers nothing."""
    if HOSTED_PATH.search(urllib.parse.urlsplit(base).path):
        return "run"
    try:
        reply, document = http.json("GET", f"{base}{ALPHA_PREFIX}/openapi.json", Budget(DETECT_TIMEOUT_S, "30 s"))
    except ApiError:
        return "runsync"
    if reply.status == 200 and "openapi" in values.obj(document):
        return "alpha"
    code = values.obj(document).get("code") if reply.status in (401, 403) else None
    return "alpha" if code in ("unauthorized", "host_not_allowed") else "runsync"


def refused(what: str, reply: Reply, body: Any) -> ApiError:
    return ApiError(f"{what}: HTTP {reply.status}: {values.shown(body)}")


class Client:
    """One job at a time against one endpoint, in one mode (``run``, ``runsync`` or ``alpha``)."""

    def __init__(self, base: str, mode: str, http: Http, *, poll_s: float, job_timeout_s: float) -> None:
        self.base = base.rstrip("/")
        self.mode = mode
        self.http = http
        self.poll_s = poll_s
        self.job_timeout_s = job_timeout_s

    def send(self, job_input: dict[str, Any]) -> Answer:
        deadline = Budget(self.job_timeout_s, "--job-timeout")
        if self.mode == "alpha":
            answer = self._alpha(job_input, deadline)
        else:
            answer = runpod_answer(self._wait(self._submit(job_input, deadline), deadline))
        answer.latency_ms = deadline.elapsed_ms()
        return answer

    def _submit(self, job_input: dict[str, Any], deadline: Budget) -> dict[str, Any]:
        what = f"POST /{self.mode}"
        reply, body = self.http.json("POST", f"{self.base}/{self.mode}", deadline, {"input": job_input})
        return job_reply(what, reply, body)

    def _wait(self, reply: dict[str, Any], deadline: Budget) -> dict[str, Any]:
        """Poll ``GET /status/<id>`` while RunPod says the job is queued or running, within the deadline."""
        while reply["status"] in PENDING:
            job_id = values.string(reply.get("id"))
            if job_id is None:
                raise ApiError(f"the job is {reply['status']} with no job id (id is {values.shown(reply.get('id'))})")
            if not JOB_ID.fullmatch(job_id):
                raise ApiError(f"the job is {reply['status']}, and its job id {values.shown(job_id)!r} is not a job id")
            if deadline.expired():
                raise ApiError(f"job {job_id} still {reply['status']}: {deadline.passed()}")
            time.sleep(min(self.poll_s, deadline.remaining()))
            answered, body = self.http.json("GET", f"{self.base}/status/{job_id}", deadline)
            reply = job_reply("GET /status", answered, body)
        return reply

    def _alpha(self, job_input: dict[str, Any], deadline: Budget) -> Answer:
        reply, body = self.http.json("POST", f"{self.base}{ALPHA_PREFIX}/txt2img", deadline, job_input)
        fields = values.obj(body)
        answer = Answer(f"HTTP {reply.status}", body, None, None, 0)
        if reply.status != 200:
            error = fields.get("error")
            answer.error = f"HTTP {reply.status}: {values.shown(error, MAX_ERROR_CHARS) if error else 'no error'}"
            answer.code = values.string(fields.get("code"))
            return answer
        answer.files["image"] = self._file(fields.get("url"), deadline)
        blended = values.obj(values.obj(fields.get("layers")).get("blended"))
        if "url" in blended:
            answer.files["blended"] = self._file(blended["url"], deadline)
        return answer

    def _file(self, url: Any, deadline: Budget) -> bytes:
        """A file the alpha API answered, from the URL it gave: on the endpoint's origin, or not fetched."""
        path = values.string(url)
        if path is None:
            raise ApiError(f"the answer's url is {values.shown(url)}, not a URL")
        # "/alpha/v1/file/..." is under the endpoint's URL (a proxy's prefix kept); "//host/..." is another host.
        rooted = path.startswith("/") and not path.startswith("//")
        target = self.base + path if rooted else urllib.parse.urljoin(self.base + "/", path)
        where = origin(target)
        if where != self.http.origin:
            shown = f"{where[0]}://{where[1]}:{where[2]}" if where else "no http origin"
            raise ApiError(
                f"the answer's url {shown_url(path)} is on another origin ({shown}): not fetched; "
                "the alpha API serves its files itself"
            )
        reply = self.http.call("GET", target, deadline)
        if reply.status != 200:
            raise refused(f"GET {shown_url(path)}", reply, reply.body[:200].decode("latin-1"))
        return reply.body


def job_reply(what: str, reply: Reply, body: Any) -> dict[str, Any]:
    """RunPod's answer about a job: HTTP 200 and an object with a job status, or an ApiError saying what it is."""
    if reply.status != 200 or not isinstance(body, dict):
        raise refused(what, reply, body)
    if values.string(body.get("status")) is None:
        raise ApiError(f"{what}: the job's status is {values.shown(body.get('status'))}, not a job status")
    return body


def runpod_answer(reply: dict[str, Any]) -> Answer:
    error = reply.get("error")
    text = None if error is None else values.shown(error, MAX_ERROR_CHARS)
    found = ERROR_CODE.match(text or "")
    output = values.obj(reply.get("output"))
    return Answer(
        status=values.printable(reply["status"], 40),
        output=reply.get("output"),
        error=text,
        job_id=values.printable(job_id, 200) if isinstance(job_id := reply.get("id"), str) else None,
        latency_ms=0,
        queue_ms=values.integer(reply.get("delayTime")),
        execution_ms=values.integer(reply.get("executionTime")),
        code=found.group(1) if found else values.string(output.get("code")),
    )
