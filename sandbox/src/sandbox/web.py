"""aiohttp pieces the front ends share: request counting, injected faults, the request's
actor for the audit log, and bearer-token checks."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import faults
from .audit import ACTOR
from .runtime.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def front_end_middleware(runtime: Runtime, api: str):
    """Count every request (method and path, query excluded) for the control endpoint, carry
    out an injected fault when one matches (sandbox/faults.py), and remember who asked (the
    User-Agent) while the request is served, for the audit log."""

    @web.middleware
    async def count_and_inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        runtime.count_request(api, request.method, request.path)
        token = ACTOR.set(request.headers.get("User-Agent", ""))
        try:
            body = await request.text() if request.can_read_body and runtime.faults.wants_body(api) else ""
            fault = runtime.faults.take(
                api, request.method, request.path, body, api == "kube" and faults.is_watch(request)
            )
            if fault is not None:
                return await faults.apply(fault, request, handler, api)
            return await handler(request)
        finally:
            ACTOR.reset(token)

    return count_and_inject


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_ok(request: web.Request, expected: str) -> bool:
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
