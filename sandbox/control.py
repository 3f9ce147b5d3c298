"""The control endpoint: what tests and demos may ask of the sandbox that no real API offers.

  GET  /requests                     API requests served, by front end, method and path
  POST /requests/reset               start counting from zero
  POST /behaviour  {"image": glob, "behaviour": "ready-after-1s"}
                                     from now on, pods whose image matches behave so
  DELETE /behaviour                  forget every override
  POST /faults  {"api": "bcs"|"kube", "method": "PUT", "path": regex, "status": 200,
                 "body": {...}, "times": 1, "request_body": regex (optional)}
                                     answer the next matching requests with this instead
  DELETE /faults                     forget every injected fault
  GET  /pods                         every pod: name, image, ready, restarts, address
  GET  /proxies                      every service proxy: name, host, port

Plain HTTP on loopback, bearer token required like every other front end.
"""

from __future__ import annotations

import re

from aiohttp import web

from .runtime.runtime import Runtime
from .settings import Settings
from .web import token_ok


def create_app(runtime: Runtime, settings: Settings) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler):
        if not token_ok(request, settings.token):
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    async def requests(request: web.Request) -> web.Response:
        return web.json_response({"requests": runtime.request_counts()})

    async def reset(request: web.Request) -> web.Response:
        runtime.reset_request_counts()
        return web.json_response({"requests": []})

    async def behaviour(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            image, spec = str(body["image"]), str(body["behaviour"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'body must be {"image": glob, "behaviour": keywords}'}, status=400)
        parsed = runtime.override_behaviour(image, spec)
        return web.json_response({"image": image, "behaviour": parsed.__dict__})

    async def clear_behaviour(request: web.Request) -> web.Response:
        runtime.clear_overrides()
        return web.json_response({})

    async def fault(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            runtime.inject_fault(str(body["api"]), str(body["method"]), str(body["path"]), int(body["status"]),
                                 body["body"], int(body.get("times", 1)), body.get("request_body"))
        except (ValueError, KeyError, TypeError, re.error) as e:
            return web.json_response({"error": f"bad fault: {e}"}, status=400)
        return web.json_response({"injected": body})

    async def clear_faults(request: web.Request) -> web.Response:
        runtime.clear_faults()
        return web.json_response({})

    async def pods(request: web.Request) -> web.Response:
        return web.json_response({"pods": [
            {"name": p.name, "workload": p.spec.workload, "image": p.image, "labels": p.labels, "state": p.state,
             "ready": p.ready, "restarts": p.restart_count, "host": p.host, "port": p.port, "served": p.served}
            for p in sorted(runtime.pods.values(), key=lambda p: p.name)
        ]})

    async def proxies(request: web.Request) -> web.Response:
        return web.json_response({"proxies": [
            {"name": key, "host": p.host, "port": p.port, "connections": p.connections_served}
            for key, p in sorted(runtime.proxies.items())
        ]})

    app = web.Application(middlewares=[auth])
    app.router.add_get("/requests", requests)
    app.router.add_post("/requests/reset", reset)
    app.router.add_post("/behaviour", behaviour)
    app.router.add_delete("/behaviour", clear_behaviour)
    app.router.add_post("/faults", fault)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_get("/pods", pods)
    app.router.add_get("/proxies", proxies)
    return app
