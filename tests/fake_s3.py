"""A fake S3-compatible endpoint for upload tests: an aiohttp app that accepts what boto3 sends (a plain PUT,
or a multipart upload), keeps the objects in memory, serves them back on GET, and records every request."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from aiohttp import web

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeS3:
    """``mode``: "ok", "deny" (403 AccessDenied on writes), or "hang" (writes answer only after ``hang_s``)."""

    mode: str = "ok"
    hang_s: float = 3.0
    objects: dict[str, bytes] = field(default_factory=dict)  # "<bucket>/<key>" -> bytes
    content_types: dict[str, str] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    parts: dict[str, dict[int, bytes]] = field(default_factory=dict)  # upload id -> part number -> bytes

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.match_info["path"]
        query = dict(request.query)
        self.requests.append(Seen(request.method, path, query, dict(request.headers), body))
        if request.method == "GET":
            if path not in self.objects:
                return self._error(404, "NoSuchKey")
            content_type = self.content_types.get(path, "binary/octet-stream")
            return web.Response(body=self.objects[path], content_type=content_type)
        if self.mode == "hang":
            await asyncio.sleep(self.hang_s)
        if self.mode == "deny":
            return self._error(403, "AccessDenied")
        bucket, _, key = path.partition("/")
        if request.method == "PUT" and "uploadId" in query:
            self.parts[query["uploadId"]][int(query["partNumber"])] = body
            return web.Response(headers={"ETag": f'"{uuid.uuid4().hex}"'})
        if request.method == "PUT":
            self._store(path, body, request.headers.get("Content-Type"))
            return web.Response(headers={"ETag": f'"{uuid.uuid4().hex}"'})
        if request.method == "POST" and "uploads" in query:
            upload_id = uuid.uuid4().hex
            self.parts[upload_id] = {}
            self.content_types[f"upload:{upload_id}"] = request.headers.get("Content-Type", "")
            return self._xml(
                "InitiateMultipartUploadResult",
                f"<Bucket>{bucket}</Bucket><Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>",
            )
        if request.method == "POST" and "uploadId" in query:
            parts = self.parts.pop(query["uploadId"])
            self._store(
                path,
                b"".join(parts[n] for n in sorted(parts)),
                self.content_types.pop(f"upload:{query['uploadId']}", None),
            )
            return self._xml(
                "CompleteMultipartUploadResult",
                f'<Bucket>{bucket}</Bucket><Key>{escape(key)}</Key><ETag>"{uuid.uuid4().hex}"</ETag>',
            )
        return self._error(400, "InvalidRequest")

    def _store(self, path: str, body: bytes, content_type: str | None) -> None:
        self.objects[path] = body
        if content_type:
            self.content_types[path] = content_type

    @staticmethod
    def _xml(root: str, inner: str) -> web.Response:
        text = f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{S3_NS}">{inner}</{root}>'
        return web.Response(text=text, content_type="application/xml")

    @staticmethod
    def _error(status: int, code: str) -> web.Response:
        text = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{code}</Message>'
            "<RequestId>fake</RequestId></Error>"
        )
        return web.Response(status=status, text=text, content_type="application/xml")
