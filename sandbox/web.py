"""aiohttp pieces the front ends share: request counting and bearer-token checks."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from aiohttp import web

from .runtime.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def front_end_middleware(runtime: Runtime, api: str):
    """Count every request (method and path, query excluded) for the control endpoint, and
    answer it with an injected fault instead when one matches (see Runtime.inject_fault)."""

    @web.middleware
    async def count_and_inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        runtime.count_request(api, request.method, request.path)
        body = await request.text() if request.can_read_body and runtime.wants_body(api) else ""
        fault = runtime.take_fault(api, request.method, request.path, body)
        if fault is not None:
            return web.json_response(fault["body"], status=fault["status"])
        return await handler(request)

    return count_and_inject


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_ok(request: web.Request, expected: str) -> bool:
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
