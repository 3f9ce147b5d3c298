"""The control endpoint: what tests and demos may ask of the sandbox that no real API offers.

  GET  /requests                     API requests served, by front end, method and path
  POST /requests/reset               start counting from zero
  POST /behaviour  {"image": glob, "behaviour": "ready-after-1s"}
                                     from now on, pods whose image matches behave so
  DELETE /behaviour                  forget every override
  POST /faults  {"api": "bcs"|"kube", "method": "PUT"|"*", "path": regex, "request_body": regex,
                 "watch": true|false, "times": 1, "probability": 1,
                 and one action: "status": 503 (+ "body", "headers"), "delay": s (+ status),
                 "hang": true, "reset": true, "cut_after": n, "gone": true}
                                     fail the matching API requests so (sandbox/faults.py);
                                     answers {"injected": fault}, 400 {"error", "field"}
  GET  /faults                       {"faults": [...]}: the active ones, "times" = hits left
  DELETE /faults[/{id}]              forget every injected fault (or one)
  GET  /pods                         every pod: name, image, ready, restarts, address, ...
  POST /pods/{name}/kill   {"down": 1}     the container is killed, restarted `down` s later
  POST /pods/{name}/evict                  the pod is evicted (the kubelet / the agent)
  POST /pods/{name}/unready {"seconds": 5} readiness fails for that long
  GET  /proxies                      every service proxy: name, host, port
  GET  /settings                     {"propagation_delay": s}: what may change at run time
  POST /settings {"propagation_delay": 3}  change it
  GET  /audit[?since=seq&kind=k]     {"events": [...]}: selector changes, workload deletes
                                     and scale-downs, oldest first (sandbox/audit.py)
  POST /audit/reset                  start the log afresh

Plain HTTP on loopback, bearer token required like every other front end.
"""

from __future__ import annotations

from aiohttp import web

from .faults import FaultError
from .runtime.runtime import PodFaultError, Runtime
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
            spec = await request.json()
        except ValueError:
            return _bad("(body)", "not JSON")
        try:
            injected = runtime.faults.add(spec)
        except FaultError as e:
            return _bad(e.field, str(e))
        return web.json_response({"injected": injected.describe()})

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": runtime.faults.describe()})

    async def clear_faults(request: web.Request) -> web.Response:
        return web.json_response({"cleared": runtime.faults.clear()})

    async def clear_fault(request: web.Request) -> web.Response:
        try:
            fault_id = int(request.match_info["id"])
        except ValueError:
            return _bad("id", "must be a number")
        if not runtime.faults.remove(fault_id):
            return web.json_response({"error": f"no fault {fault_id}"}, status=404)
        return web.json_response({"cleared": 1})

    async def pods(request: web.Request) -> web.Response:
        return web.json_response({"pods": [_pod(p) for p in sorted(runtime.pods.values(), key=lambda p: p.name)]})

    async def pod_fault(request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return _bad("(body)", "not JSON")
        if not isinstance(body, dict):
            return _bad("(body)", "must be a JSON object")
        try:
            if action == "kill":
                pod = runtime.kill_pod(name, _seconds(body, "down", 1.0))
            elif action == "unready":
                pod = runtime.hold_unready(name, _seconds(body, "seconds", None))
            elif action == "evict":
                pod = runtime.evict_pod(name)
            else:
                return web.json_response({"error": f"unknown pod fault {action} (kill, evict, unready)"}, status=404)
        except FieldError as e:
            return _bad(e.field, str(e))
        except PodFaultError as e:
            return web.json_response({"error": str(e)}, status=e.status)
        return web.json_response({"fault": action, "pod": _pod(pod)})

    async def get_settings(request: web.Request) -> web.Response:
        return web.json_response({"propagation_delay": runtime.propagation.delay})

    async def set_settings(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _bad("(body)", "not JSON")
        if not isinstance(body, dict):
            return _bad("(body)", "must be a JSON object")
        for key in body:
            if key != "propagation_delay":
                return _bad(key, "not a run-time setting (known: propagation_delay)")
        try:
            if "propagation_delay" in body:
                settings.propagation_delay = runtime.propagation.delay = _seconds(body, "propagation_delay", None)
        except FieldError as e:
            return _bad(e.field, str(e))
        return await get_settings(request)

    async def audit(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", 0))
        except ValueError:
            return _bad("since", "must be a sequence number")
        return web.json_response({"events": runtime.audit.events(since, request.query.get("kind"))})

    async def reset_audit(request: web.Request) -> web.Response:
        runtime.audit.reset()
        return web.json_response({"events": []})

    async def proxies(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "proxies": [
                    {"name": key, "host": p.host, "port": p.port, "connections": p.connections_served}
                    for key, p in sorted(runtime.proxies.items())
                ]
            }
        )

    app = web.Application(middlewares=[auth])
    app.router.add_get("/requests", requests)
    app.router.add_post("/requests/reset", reset)
    app.router.add_post("/behaviour", behaviour)
    app.router.add_delete("/behaviour", clear_behaviour)
    app.router.add_post("/faults", fault)
    app.router.add_get("/faults", list_faults)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_delete("/faults/{id}", clear_fault)
    app.router.add_get("/pods", pods)
    app.router.add_post("/pods/{name}/{action}", pod_fault)
    app.router.add_get("/proxies", proxies)
    app.router.add_get("/settings", get_settings)
    app.router.add_post("/settings", set_settings)
    app.router.add_get("/audit", audit)
    app.router.add_post("/audit/reset", reset_audit)
    return app


class FieldError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _seconds(body: dict, key: str, default: float | None) -> float:
    value = body.get(key, default)
    if value is None:
        raise FieldError(key, "required (seconds)")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise FieldError(key, "must be a number of seconds >= 0")
    return float(value)


def _bad(field_name: str, message: str) -> web.Response:
    return web.json_response(
        {"error": message if message.startswith(field_name) else f"{field_name}: {message}", "field": field_name},
        status=400,
    )


def _pod(p) -> dict:
    return {
        "name": p.name,
        "workload": p.spec.workload,
        "image": p.image,
        "labels": p.labels,
        "state": p.state,
        "ready": p.ready,
        "restarts": p.restart_count,
        "exits": p.exits,
        "down": p.down,
        "unready_held": p.held_unready,
        "host": p.host,
        "port": p.port,
        "served": p.served,
    }
