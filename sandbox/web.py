"""aiohttp pieces the front ends share: request counting and bearer-token checks."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from aiohttp import web

from .runtime.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def counting_middleware(runtime: Runtime, api: str):
    """Count every request (method and path, query excluded) for the control endpoint."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        runtime.count_request(api, request.method, request.path)
        return await handler(request)

    return count


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_ok(request: web.Request, expected: str) -> bool:
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
