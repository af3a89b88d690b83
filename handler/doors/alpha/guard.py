"""Browser defences of the local alpha API, the way local development servers defend themselves.

Binding loopback keeps other hosts out, not a browser on this machine: any page it opens can send "simple"
requests (no preflight) to 127.0.0.1, and a DNS-rebinding page can even read the answers. So a request must
name a host this server answers to (``Host``), must not come from another origin (``Origin``,
``Sec-Fetch-Site``), must carry each of those headers once at most, and a JSON endpoint takes only
``Content-Type: application/json``, which no page can send cross-origin without a preflight this server never
grants.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web

from handler.errors import BadRequest, CrossSiteRequest, HostNotAllowed, UnsupportedMediaType

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# What a browser says of a request its own page made, or one the user typed or bookmarked.
SAFE_FETCH_SITES = ("same-origin", "none")
SHOWN_CHARS = 100
# The headers a decision here (or the token check) reads: each may come once. Of two, a check would read the first
# and a browser, proxy or the next check might act on the other.
SINGLE_HEADERS = (hdrs.HOST, hdrs.ORIGIN, "Sec-Fetch-Site", hdrs.CONTENT_TYPE, hdrs.AUTHORIZATION)


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, lower-case, without port or IPv6 brackets; None when malformed."""
    if not header or any(char in header for char in "/?#@\\ "):
        return None
    try:
        parts = urllib.parse.urlsplit(f"//{header}")
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return None
    return parts.hostname


def allowed_hosts(serve_host: str, extra: Iterable[str]) -> frozenset[str]:
    """The names a ``Host`` header may carry: the loopback names, the bound address and the configured ones."""
    return frozenset(name.lower() for name in (*LOOPBACK_NAMES, serve_host, *extra))


def same_origin(origin: str, host: str) -> bool:
    return origin.lower() in (f"http://{host}".lower(), f"https://{host}".lower())


def browser_guard(allowed: frozenset[str]) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        for name in SINGLE_HEADERS:
            if len(request.headers.getall(name, ())) > 1:
                raise BadRequest(f"the request has more than one {name} header; it may carry one at most")
        host = request.headers.get(hdrs.HOST, "")
        if host_name(host) not in allowed:
            raise HostNotAllowed(
                f"this server does not answer to the Host {host[:SHOWN_CHARS]!r}; "
                "for a name other than a loopback one, list it in ALPHA_SERVE_ALLOWED_HOSTS"
            )
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and not same_origin(origin, host):
            raise CrossSiteRequest(f"requests from another origin are refused (Origin {origin[:SHOWN_CHARS]!r})")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site.lower() not in SAFE_FETCH_SITES:
            raise CrossSiteRequest(f"cross-site requests are refused (Sec-Fetch-Site {site[:SHOWN_CHARS]!r})")
        return await handler(request)

    return guard


def require_json(request: web.Request) -> None:
    """A JSON endpoint's body must say it is JSON; a form or text body is what a cross-site page can send."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"the body must be sent as Content-Type: application/json, not {request.content_type[:SHOWN_CHARS]!r}"
        )
