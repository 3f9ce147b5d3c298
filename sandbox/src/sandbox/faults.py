"""Injected API faults: what a failing network, proxy or API server does to a request.

A fault matches requests to one front end (``api``: "kube" or "bcs") by method, path
(a regular expression, searched), optionally the request body (a regular expression)
and, for Kubernetes, whether the request is a watch.  Each matching request is hit with
``probability`` until ``times`` hits were made; the fault is then gone.  What a hit does
(one action per fault, ``delay`` may be combined with ``status``):

  status (+ body, headers)  answer with this status; without a body, what the real front
                            end writes for that status (see ``default_response``)
  delay                     wait this many seconds, then answer normally (or with status)
  hang                      never answer: hold the request until the client goes away
                            (at most HANG_LIMIT seconds, then drop the connection)
  reset                     close the connection with a TCP RST, no HTTP answer at all,
                            as a crashed proxy does
  cut_after                 (watches) send this many events, then cut the stream: the
                            connection closes without the chunked encoding's last chunk
  gone                      (watches) answer as the watch cache does for a too-old
                            resourceVersion: HTTP 200 and one ERROR event, 410 Expired

The watch actions are carried out by the Kubernetes watch handler (it reads the fault
from the request under ``WATCH_FAULT``); everything else happens before any handler runs.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

# A held request is dropped after this long (a client with no timeout would wait forever).
HANG_LIMIT = 15 * 60
WATCH_FAULT = web.RequestKey("sandbox_watch_fault", object)

_MISSING = object()
_ACTIONS = ("status", "delay", "hang", "reset", "cut_after", "gone")


class FaultError(ValueError):
    """A bad fault spec; ``field`` names the offending key (the control endpoint's 400 says it)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class Fault:
    id: int
    api: str
    method: str
    path: re.Pattern
    request_body: re.Pattern | None
    watch: bool | None  # True: watches only, False: no watches, None: both
    times: int  # hits left
    probability: float
    status: int | None = None
    body: object = _MISSING
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None
    hang: bool = False
    reset: bool = False
    cut_after: int | None = None
    gone: bool = False
    hits: int = 0
    created: float = field(default_factory=time.time)

    def matches(self, api: str, method: str, path: str, body: str, is_watch: bool) -> bool:
        if self.api != api or self.method not in (method, "*") or not self.path.search(path):
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return self.request_body is None or bool(self.request_body.search(body))

    def describe(self) -> dict:
        """The fault as GET /faults shows it: its spec, with ``times`` the hits still to come."""
        out: dict = {
            "id": self.id,
            "api": self.api,
            "method": self.method,
            "path": self.path.pattern,
            "request_body": self.request_body.pattern if self.request_body else None,
            "watch": self.watch,
            "times": self.times,
            "hits": self.hits,
            "probability": self.probability,
            "created": self.created,
        }
        if self.status is not None:
            out["status"] = self.status
            if self.body is not _MISSING:
                out["body"] = self.body
            if self.headers:
                out["headers"] = dict(self.headers)
        for name in ("delay", "cut_after"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("hang", "reset", "gone"):
            if getattr(self, name):
                out[name] = True
        return out


def parse(spec, fault_id: int) -> Fault:
    """Check a fault spec (a JSON object) and build the fault; raises FaultError naming the field."""
    if not isinstance(spec, dict):
        raise FaultError("(body)", "must be a JSON object")
    known = {
        "api",
        "method",
        "path",
        "request_body",
        "watch",
        "times",
        "probability",
        "status",
        "body",
        "headers",
        *_ACTIONS,
    }
    for key in spec:
        if key not in known:
            raise FaultError(key, f"unknown field (known: {', '.join(sorted(known))})")
    # optional keys sent as null count as absent (the Control helper sends request_body=None)
    spec = {k: v for k, v in spec.items() if v is not None}

    api = spec.get("api", _MISSING)
    if api not in ("kube", "bcs"):
        raise FaultError("api", 'required, "kube" or "bcs"')
    method = spec.get("method", "*")
    if not isinstance(method, str) or not method:
        raise FaultError("method", 'must be an HTTP method or "*"')
    path = _regex(spec, "path", "")
    request_body = _regex(spec, "request_body", None)
    watch = spec.get("watch")
    if watch is not None and not isinstance(watch, bool):
        raise FaultError("watch", "must be true or false")
    if watch and api != "kube":
        raise FaultError("watch", "only the Kubernetes API has watches")
    times = spec.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise FaultError("times", "must be an integer >= 1")
    probability = spec.get("probability", 1)
    if not isinstance(probability, (int, float)) or isinstance(probability, bool) or not 0 <= probability <= 1:
        raise FaultError("probability", "must be a number from 0 to 1")

    fault = Fault(
        id=fault_id,
        api=api,
        method=method.upper(),
        path=path,
        request_body=request_body,
        watch=watch,
        times=times,
        probability=float(probability),
    )
    chosen = [a for a in _ACTIONS if a in spec]
    if not chosen:
        raise FaultError("status", f"one of {', '.join(_ACTIONS)} is required")
    if len(chosen) > 1 and sorted(chosen) != ["delay", "status"]:
        raise FaultError(chosen[1], f"cannot be combined with {chosen[0]} (only delay and status combine)")
    if "delay" in spec:
        delay = spec["delay"]
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            raise FaultError("delay", "must be a number of seconds >= 0")
        fault.delay = float(delay)
    if "status" in spec:
        status = spec["status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise FaultError("status", "must be an HTTP status code (100-599)")
        fault.status = status
        fault.body = spec.get("body", _MISSING)
        if api == "kube" and status < 400 and fault.body is _MISSING:
            raise FaultError("body", "required when a kube fault's status is below 400")
        headers = spec.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in headers.items()
        ):
            raise FaultError("headers", "must be an object of header names to strings")
        fault.headers = {k: str(v) for k, v in headers.items()}
    elif "body" in spec or "headers" in spec:
        raise FaultError("body" if "body" in spec else "headers", "only with status")
    for flag in ("hang", "reset", "gone"):
        if flag in spec:
            if spec[flag] is not True:
                raise FaultError(flag, "must be true")
            setattr(fault, flag, True)
    if "cut_after" in spec:
        cut = spec["cut_after"]
        if not isinstance(cut, int) or isinstance(cut, bool) or cut < 0:
            raise FaultError("cut_after", "must be an integer >= 0 (events sent before the cut)")
        fault.cut_after = cut
    if fault.gone or fault.cut_after is not None:
        name = "gone" if fault.gone else "cut_after"
        if api != "kube":
            raise FaultError(name, "only the Kubernetes API has watches")
        if watch is False:
            raise FaultError("watch", f"{name} only applies to watches")
        fault.watch = True  # a list call on the same path is never hit
    return fault


def _regex(spec: dict, name: str, default):
    value = spec.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FaultError(name, "must be a regular expression (a string)")
    try:
        return re.compile(value)
    except re.error as e:
        raise FaultError(name, f"bad regular expression: {e}")


class Faults:
    """The active faults, oldest first (the first matching fault that fires wins)."""

    def __init__(self):
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec) -> Fault:
        with self._lock:
            fault = parse(spec, next(self._ids))
            self._faults.append(fault)
            return fault

    def describe(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def wants_body(self, api: str) -> bool:
        with self._lock:
            return any(f.api == api and f.request_body is not None for f in self._faults)

    def take(self, api: str, method: str, path: str, body: str = "", is_watch: bool = False) -> Fault | None:
        """The fault that hits this request, if any (its count goes down; at zero it is gone)."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(api, method, path, body, is_watch):
                    continue
                if fault.probability < 1 and random.random() >= fault.probability:
                    continue  # spared this time; a later fault may still match
                fault.times -= 1
                fault.hits += 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None


def is_watch(request: web.Request) -> bool:
    """A Kubernetes watch: ``?watch=true`` (or 1) or a legacy ``/watch/`` path."""
    return request.query.get("watch", "").lower() in ("true", "1") or "/watch/" in request.path


# -- carrying a fault out ------------------------------------------------------------------


async def apply(fault: Fault, request: web.Request, handler, api: str) -> web.StreamResponse:
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.hang:
        return await _hang(request)
    if fault.reset:
        reset(request)
        return web.Response()  # never written: the transport is gone
    if fault.status is not None:
        return response(fault, api)
    if fault.cut_after is not None or fault.gone:
        request[WATCH_FAULT] = fault
    return await handler(request)


async def _hang(request: web.Request) -> web.StreamResponse:
    """Hold the request while the client is there (aiohttp does not cancel a handler whose
    client left, so look now and then), for at most HANG_LIMIT seconds."""
    deadline = time.monotonic() + HANG_LIMIT
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(0.2)
    reset(request)
    return web.Response()


def reset(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0, then close), as a crashed proxy does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def response(fault: Fault, api: str) -> web.Response:
    if fault.body is _MISSING:
        resp = default_response(api, fault.status)
    elif isinstance(fault.body, str):
        resp = web.Response(text=fault.body, status=fault.status, content_type="text/plain")
    else:
        resp = web.Response(text=json.dumps(fault.body), status=fault.status, content_type="application/json")
    for name, value in fault.headers.items():
        resp.headers[name] = value
    return resp


INJECTED = "sandbox: injected fault"


def default_response(api: str, status: int) -> web.Response:
    return _kube_default(status) if api == "kube" else _bcs_default(status)


def _kube_default(status: int) -> web.Response:
    """What kube-apiserver itself writes for this status (k8s.io/apiserver filters and
    apimachinery's errors): mostly a Status object, but the max-in-flight and priority-and-fairness
    filters answer 429 with http.Error (plain text) and a Retry-After header, and the timeout
    filter encodes the bare ErrStatus (no kind/apiVersion)."""
    if status == 429:
        resp = web.Response(text="Too many requests, please try again later.\n", status=429, content_type="text/plain")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Retry-After"] = "1"
        return resp
    phrase = _phrase(status)
    reasons = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        406: "NotAcceptable",
        409: "Conflict",
        410: "Expired",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }
    body: dict = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": phrase.lower()}
    if status == 500:
        body["message"] = f"Internal error occurred: {INJECTED}"
        body["details"] = {"causes": [{"message": INJECTED}]}
    elif status == 503:
        body["message"] = "the server is currently unable to handle the request"
    elif status == 504:
        body = {
            "metadata": {},
            "status": "Failure",
            "message": "Timeout: request did not complete within requested timeout - context deadline exceeded",
            "details": {},
        }
    if status in reasons:
        body["reason"] = reasons[status]
    body["code"] = status
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def _bcs_default(status: int) -> web.Response:
    """HTTP 200: a scheduler failure as the driver relays it (text/plain, 1405200, data {});
    any other status: the gateway's envelope for it (JSON, code = the HTTP status)."""
    from .bcs import envelope  # the BCS front end's own formats

    if status == 200:
        return envelope.failure(envelope.SCHED_COMMON, INJECTED)
    body = {"result": False, "code": status, "message": _phrase(status), "data": None}
    return web.json_response(body, status=status, dumps=envelope.dumps)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
