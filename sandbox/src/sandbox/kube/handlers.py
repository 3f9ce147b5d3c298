"""The HTTP layer: paths as kube-apiserver lays them out, verbs, body decoding with field
validation (Strict / Warn / Ignore), the three patch types, delete options, lists with
selectors and chunking, and watches (chunked newline-delimited JSON events)."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
from dataclasses import dataclass

import yaml
from aiohttp import web

from sandbox.faults import WATCH_FAULT

from . import auth, discovery, errors, openapi, patch, protobuf, schema, table
from . import resources as R
from .cluster import Cluster
from .selectors import parse_field_selector, parse_label_selector

JSON = "application/json"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json")


TARGET = web.RequestKey("kube_target", object)
# What the real server says on every request for a deprecated resource (since v1.33).
DEPRECATED = {R.ENDPOINTS.plural: "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"}


async def add_deprecation_warning(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the deprecation warning goes on errors and watches too."""
    target = request.get(TARGET)
    if target is not None and target.resource.plural in DEPRECATED:
        response.headers.add("Warning", f'299 - "{DEPRECATED[target.resource.plural]}"')


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def respond(obj, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=dumps(obj), status=status, content_type=JSON)
    for w in warnings or []:
        resp.headers.add("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return resp


TABLE_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def respond_table(doc: dict) -> web.Response:
    resp = web.Response(body=dumps(doc), status=200)
    resp.headers["Content-Type"] = TABLE_TYPE
    return resp


def error_response(e: errors.ApiError) -> web.Response:
    return respond(e.status(), e.code)


@dataclass
class Target:
    resource: R.Resource
    namespace: str | None  # None: across all namespaces (or cluster-scoped)
    name: str | None
    subresource: str
    legacy_watch: bool


def parse_path(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
    if not rest:
        return None
    known = R.BY_PATH.get(group, {}).get(version, {})
    # /namespaces/<ns>/<plural>[/<name>[/<sub>]]: content of a namespace
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in known and known[rest[2]].namespaced:
        resource = known[rest[2]]
        name = rest[3] if len(rest) > 3 else None
        sub = rest[4] if len(rest) > 4 else ""
        if len(rest) > 5:
            return None
        return Target(resource, rest[1], name, sub, legacy_watch)
    resource = known.get(rest[0])
    if resource is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if resource.namespaced and name is not None:
        return None  # /api/v1/pods/x is not a path
    return Target(resource, None if resource.namespaced else "", name, sub, legacy_watch)


class Api:
    def __init__(self, cluster: Cluster):
        self.c = cluster

    # -- entry --------------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except errors.ApiError as e:
            return error_response(e)
        except errors.Invalid as e:
            return error_response(e.to_api_error())

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.method == "GET":
            special = self._discovery(request, path)
            if special is not None:
                return special
        target = parse_path(path)
        if target is None:
            raise errors.resource_not_found()
        request[TARGET] = target
        r, q = target.resource, request.query
        method = request.method
        if target.subresource:
            allowed = r.subresources.get(target.subresource)
            if allowed is None or target.name is None:
                raise errors.resource_not_found()
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create"}.get(method)
            if verb is None or verb not in allowed:
                raise errors.method_not_allowed()
        elif target.name is None:
            verb = {
                "GET": "watch" if (target.legacy_watch or _true(q.get("watch"))) else "list",
                "POST": "create",
                "DELETE": "deletecollection",
            }.get(method)
            if target.namespace is None and r.namespaced and verb not in ("list", "watch"):
                raise errors.method_not_allowed()
        else:
            verb = {
                "GET": "watch" if target.legacy_watch else "get",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(method)
        if verb is None or (not target.subresource and not r.can(verb)):
            raise errors.method_not_allowed()
        if verb == "get":
            return await self.get(request, target)
        if verb == "list":
            return self.list(request, target, q)
        if verb == "watch":
            return await self.watch(request, target, q)
        if verb == "create":
            if target.subresource == "token":
                return await self.token_request(request, target)
            return await self.create(request, target)
        if verb == "update":
            return await self.update(request, target)
        if verb == "patch":
            return await self.patch(request, target)
        if verb == "delete":
            return await self.delete(request, target)
        if verb == "deletecollection":
            return await self.delete_collection(request, target)
        raise errors.method_not_allowed()

    def _discovery(self, request: web.Request, path: str) -> web.StreamResponse | None:
        path = path.rstrip("/") or "/"
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return respond(discovery.VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            if discovery.wants_aggregated(accept):
                return _aggregated(discovery.aggregated(legacy=True))
            host = request.host
            return respond(discovery.api_versions(host))
        if path == "/apis":
            if discovery.wants_aggregated(accept):
                return _aggregated(discovery.aggregated(legacy=False))
            return respond(discovery.api_group_list())
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "api" and parts[1] == "v1":
            return respond(discovery.resource_list("", "v1"))
        if len(parts) == 2 and parts[0] == "apis":
            if any(g == parts[1] for g, _ in R.GROUP_VERSIONS):
                return respond(discovery.api_group(parts[1]))
            raise errors.resource_not_found()
        if len(parts) == 3 and parts[0] == "apis":
            if (parts[1], parts[2]) in R.GROUP_VERSIONS:
                return respond(discovery.resource_list(parts[1], parts[2]))
            raise errors.resource_not_found()
        if path == "/openapi/v3":
            return respond(openapi.index())
        if path.startswith("/openapi/v3/"):
            rest = path[len("/openapi/v3/") :].split("/")
            if rest[0] == "api" and len(rest) == 2:
                gv = ("", rest[1])
            elif rest[0] == "apis" and len(rest) == 3:
                gv = (rest[1], rest[2])
            else:
                raise errors.resource_not_found()
            if gv not in R.GROUP_VERSIONS:
                raise errors.resource_not_found()
            resp = web.Response(body=openapi.document(*gv), content_type=JSON)
            if "hash" in request.query:
                resp.headers["Cache-Control"] = "public, immutable"
            return resp
        return None

    # -- reads --------------------------------------------------------------------------
    async def get(self, request: web.Request, t: Target) -> web.Response:
        obj = self.c.current(t.resource, t.namespace or "", t.name)
        if t.subresource == "scale":
            return respond(self.c.scale_of(obj))
        if table.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            return respond_table(
                table.table(t.resource, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}, include)
            )
        return respond(obj)

    def _predicate(self, t: Target, q):
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), t.resource.plural)
        return lambda o: labels.matches(o["metadata"].get("labels")) and fields.matches(o)

    def list(self, request: web.Request, t: Target, q) -> web.Response:
        predicate = self._predicate(t, q)
        items = [o for o in self.c.store.list(t.resource, t.namespace) if predicate(o)]
        rv = str(self.c.store.rv)
        meta: dict = {"resourceVersion": rv}
        start = 0
        if q.get("continue"):
            try:
                token = json.loads(base64.b64decode(q["continue"]))
                start, rv = int(token["start"]), token["rv"]
                meta["resourceVersion"] = rv
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("invalid continue token")
        limit = int(q.get("limit") or 0)
        page = items[start : start + limit] if limit > 0 else items[start:]
        if limit > 0 and start + limit < len(items):
            meta["continue"] = base64.b64encode(json.dumps({"rv": rv, "start": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        # typed lists carry no kind/apiVersion on their items
        out = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        if table.wants_table(request.headers.get("Accept", "")):
            return respond_table(table.table(t.resource, out, meta, q.get("includeObject", "Metadata")))
        return respond(
            {"kind": f"{t.resource.kind}List", "apiVersion": t.resource.api_version, "metadata": meta, "items": out}
        )

    async def watch(self, request: web.Request, t: Target, q) -> web.StreamResponse:
        predicate = self._predicate(t, q)
        if t.name is not None:
            named, base = t.name, predicate
            predicate = lambda o: o["metadata"]["name"] == named and base(o)  # noqa: E731
        rv = q.get("resourceVersion") or ""
        try:
            since = None if rv in ("", "0") else int(rv)
        except ValueError:
            raise errors.bad_request(f'invalid resource version: strconv.ParseUint: parsing "{rv}": invalid syntax')
        initial = _true(q.get("sendInitialEvents"))
        if initial:
            since = None
        timeout = float(q.get("timeoutSeconds") or random.uniform(1800, 3600))
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        resp.enable_chunked_encoding()
        fault = request.get(WATCH_FAULT)  # an injected watch fault (sandbox/faults.py)
        cut_after = fault.cut_after if fault is not None else None
        try:
            if fault is not None and fault.gone:
                # as if the version had fallen out of the history: the watch cache's 410
                raise errors.expired(f"too old resource version: {since or 0} ({self.c.store.rv})")
            watcher = self.c.store.watch(t.resource, t.namespace, predicate, since)
        except errors.ApiError as e:
            # the watch cache answers a too-old version in-stream, with HTTP 200
            await resp.prepare(request)
            await resp.write(dumps({"type": "ERROR", "object": e.status()}) + b"\n")
            await resp.write_eof()
            return resp
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        bookmark_pending = initial
        as_table = table.wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        first = True
        sent = 0
        try:
            while True:
                if cut_after is not None and sent >= cut_after:
                    # cut: close the connection without the chunked encoding's last chunk
                    request.transport.close()
                    return resp
                if bookmark_pending and watcher.queue.empty():
                    bookmark_pending = False
                    await resp.write(
                        dumps(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": t.resource.kind,
                                    "apiVersion": t.resource.api_version,
                                    "metadata": {
                                        "resourceVersion": str(self.c.store.rv),
                                        "annotations": {"k8s.io/initial-events-end": "true"},
                                    },
                                },
                            }
                        )
                        + b"\n"
                    )
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    # wake now and then to notice a client that went away (aiohttp does
                    # not cancel handlers on disconnect) on a resource with no events
                    kind, obj = await asyncio.wait_for(watcher.queue.get(), min(remaining, 5.0))
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if as_table:
                    obj = table.watch_table(t.resource, obj, include, first)
                    first = False
                await resp.write(dumps({"type": kind, "object": obj}) + b"\n")
                sent += 1
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            watcher.close()
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp

    # -- body decoding ------------------------------------------------------------------
    @staticmethod
    def _directive(q, options_kind: str) -> str:
        value = q.get("fieldValidation", "")
        if value == "":
            return "Warn"
        if value not in ("Ignore", "Warn", "Strict"):
            raise errors.ApiError(
                422,
                "Invalid",
                f'{options_kind}.meta.k8s.io "" is invalid: fieldValidation: '
                f'Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"',
                {
                    "group": "meta.k8s.io",
                    "kind": options_kind,
                    "causes": [
                        {
                            "reason": "FieldValueNotSupported",
                            "message": f'Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"',
                            "field": "fieldValidation",
                        }
                    ],
                },
            )
        return value

    @staticmethod
    def _dry_run(q, options_kind: str) -> bool:
        values = q.getall("dryRun", [])
        if not values:
            return False
        if values != ["All"]:
            shown = "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"
            message = f'Unsupported value: {shown}: supported values: "All"'
            raise errors.ApiError(
                422,
                "Invalid",
                f'{options_kind}.meta.k8s.io "" is invalid: dryRun: {message}',
                {
                    "group": "meta.k8s.io",
                    "kind": options_kind,
                    "causes": [{"reason": "FieldValueNotSupported", "message": message, "field": "dryRun"}],
                },
            )
        return True

    async def _read_object(
        self, request: web.Request, model: str, kind: str, api_version: str, directive: str
    ) -> tuple[dict, list[str]]:
        """Decode a create/update body as the real server does: into the typed object,
        dropping unknown fields, reporting them (and duplicates) per ``directive``."""
        raw = await request.read()
        ctype = (request.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()
        version = api_version.rsplit("/", 1)[-1]
        dups: list[str] = []
        try:
            if ctype in (JSON, "*/*", ""):
                obj, dups = schema.load_json_tracking_duplicates(raw or b"{}")
            elif ctype in ("application/yaml", "application/x-yaml"):
                obj = yaml.safe_load(raw) if raw else {}
            elif ctype == protobuf.CONTENT_TYPE and kind in protobuf.DECODERS:
                obj = protobuf.decode(raw)
            else:
                raise errors.ApiError(
                    415,
                    "UnsupportedMediaType",
                    'the body of the request was in an unknown format - accepted media types '
                    'include: application/json, application/yaml, application/cbor',
                    {},
                )
        except protobuf.ProtobufError as e:
            raise errors.bad_request(str(e))
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {_go_json_error(e)}")
        if not isinstance(obj, dict):
            raise errors.bad_request(
                "couldn't get version/kind; json parse error: json: cannot unmarshal "
                f"{'array' if isinstance(obj, list) else 'string'} into Go value of type "
                "struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; "
                "Kind string \"json:\\\"kind,omitempty\\\"\" }"
            )
        body_kind, body_version = obj.get("kind"), obj.get("apiVersion")
        if body_version and body_version != api_version:
            raise errors.bad_request(
                f"the API version in the data ({body_version}) does not match the expected API version ({api_version})"
            )
        if body_kind and body_kind != kind:
            raise errors.bad_request(
                f"{body_kind} in version \"{version}\" cannot be handled as a {kind}: "
                f"no kind \"{body_kind}\" is registered for version \"{api_version}\""
            )
        unknown: list[str] = []
        try:
            typed = schema.decode(obj, model, unknown)
        except schema.TypeError_ as e:
            raise errors.bad_request(f"{kind} in version \"{version}\" cannot be handled as a {kind}: {e}")
        problems = [f'duplicate field "{d}"' for d in dups] + [f'unknown field "{u}"' for u in unknown]
        warnings: list[str] = []
        if problems:
            if directive == "Strict":
                raise errors.bad_request(
                    f"{kind} in version \"{version}\" cannot be handled as a {kind}: "
                    f"strict decoding error: {', '.join(problems)}"
                )
            if directive == "Warn":
                warnings = problems
        return typed, warnings

    # -- writes -------------------------------------------------------------------------
    async def create(self, request: web.Request, t: Target) -> web.Response:
        directive = self._directive(request.query, "CreateOptions")
        r = t.resource
        obj, warnings = await self._read_object(request, r.model, r.kind, r.api_version, directive)
        if r in R.REVIEWS:  # answered for the requesting user, not stored
            return respond(auth.review(r, request[auth.USER], self.c.store, obj), 201, warnings)
        meta = obj.get("metadata") or {}
        if r.namespaced and meta.get("namespace") and meta["namespace"] != t.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        dry_run = self._dry_run(request.query, "CreateOptions")
        created = await self.c.create(r, t.namespace or "", obj, dry_run=dry_run)
        return respond(created, 201, warnings)

    async def token_request(self, request: web.Request, t: Target) -> web.Response:
        directive = self._directive(request.query, "CreateOptions")
        obj, warnings = await self._read_object(
            request, "AuthenticationV1TokenRequest", "TokenRequest", "authentication.k8s.io/v1", directive
        )
        return respond(auth.token_request(self.c.authn, t.namespace, t.name, obj), 201, warnings)

    async def update(self, request: web.Request, t: Target) -> web.Response:
        directive = self._directive(request.query, "UpdateOptions")
        r = t.resource
        if t.subresource == "scale":
            obj, warnings = await self._read_object(request, "V1Scale", "Scale", "autoscaling/v1", directive)
            return respond(await self.c.update_scale(t.namespace, t.name, obj), 200, warnings)
        obj, warnings = await self._read_object(request, r.model, r.kind, r.api_version, directive)
        dry_run = self._dry_run(request.query, "UpdateOptions")
        updated = await self.c.update(r, t.namespace or "", t.name, obj, t.subresource, dry_run=dry_run)
        return respond(updated, 200, warnings)

    async def patch(self, request: web.Request, t: Target) -> web.Response:
        ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in PATCH_TYPES:
            # Server-side apply (application/apply-patch+yaml) is not implemented by the sandbox.
            raise errors.ApiError(
                415,
                "UnsupportedMediaType",
                f'the body of the request was in an unknown format - accepted media types include: '
                f'{", ".join(PATCH_TYPES)}',
                {},
            )
        directive = self._directive(request.query, "PatchOptions")
        r = t.resource
        ns = t.namespace or ""
        current = self.c.current(r, ns, t.name)
        model = r.model
        if t.subresource == "scale":
            current, model = self.c.scale_of(current), "V1Scale"
        raw = await request.read()
        try:
            body, dups = schema.load_json_tracking_duplicates(raw)
        except ValueError as e:
            raise errors.bad_request(
                f"error decoding patch: {_go_json_error(e)}" if directive != "Ignore" else _go_json_error(e)
            )
        strict: list[str] = []
        if directive in ("Strict", "Warn") and ctype != "application/json-patch+json":
            strict += [f'duplicate field "{d}"' for d in dups]
        try:
            if ctype == "application/json-patch+json":
                patched = patch.json_patch(current, body)
            elif ctype == "application/merge-patch+json":
                if not isinstance(body, dict):
                    raise patch.PatchError("Invalid JSON Patch", 400)
                patched = patch.merge_patch(current, body)
            else:
                if not isinstance(body, dict):
                    raise patch.PatchError(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}", 400
                    )
                patched = patch.strategic_merge(current, body, model)
        except patch.PatchError as e:
            if e.code == 400:
                raise errors.bad_request(str(e))
            raise errors.ApiError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                {"causes": [{"reason": "UnexpectedServerResponse", "message": str(e)}]},
            )
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched document is not an object")
        unknown: list[str] = []
        shown = dumps(patched).decode() if ctype != "application/strategic-merge-patch+json" else _go_plus_v(body)
        try:
            typed = schema.decode(patched, model, unknown)
        except schema.TypeError_ as e:
            raise _patch_invalid(shown, str(e))
        strict += [f'unknown field "{u}"' for u in unknown]
        warnings: list[str] = []
        if strict:
            if directive == "Strict":
                raise _patch_invalid(shown, "strict decoding error: " + ", ".join(strict))
            if directive == "Warn":
                warnings = strict
        if t.subresource == "scale":
            return respond(await self.c.update_scale(ns, t.name, typed), 200, warnings)
        # a patch that sets metadata.resourceVersion makes the write conditional on it
        expect = typed.get("metadata", {}).get("resourceVersion")
        dry_run = self._dry_run(request.query, "PatchOptions")
        updated = await self.c.update(r, ns, t.name, typed, t.subresource, expect_rv=expect, dry_run=dry_run)
        return respond(updated, 200, warnings)

    async def _delete_options(self, request: web.Request) -> dict:
        q = request.query
        options: dict = {}
        raw = await request.read()
        ctype = (request.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()
        if raw.strip() and ctype == protobuf.CONTENT_TYPE:
            try:
                options = protobuf.decode(raw)
            except (protobuf.ProtobufError, KeyError) as e:
                raise errors.bad_request(f"decoded object cannot be converted to DeleteOptions: {e}")
        elif raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise errors.bad_request(_go_json_error(e))
            if not isinstance(body, dict):
                raise errors.bad_request("json: cannot unmarshal array into Go value of type v1.DeleteOptions")
            options = body
        else:
            for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
                if key in q:
                    options[key] = q[key]
            if "gracePeriodSeconds" in options:
                try:
                    options["gracePeriodSeconds"] = int(options["gracePeriodSeconds"])
                except ValueError:
                    raise errors.bad_request(
                        f'strconv.ParseInt: parsing "{options["gracePeriodSeconds"]}": invalid syntax'
                    )
            if "orphanDependents" in options:
                options["orphanDependents"] = _true(options["orphanDependents"])
        policy = options.get("propagationPolicy")
        orphan = options.get("orphanDependents")
        causes = []
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{policy}": supported '
                    f'values: "Foreground", "Background", "Orphan", "nil"',
                    "field": "propagationPolicy",
                }
            )
        if policy is not None and orphan is not None:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: \"{policy}\": orphanDependents "
                    "and deletionPropagation cannot be both set",
                    "field": "propagationPolicy",
                }
            )
        if causes:
            raise errors.ApiError(
                422,
                "Invalid",
                'DeleteOptions.meta.k8s.io "" is invalid: '
                + ", ".join(f"{c['field']}: {c['message']}" for c in causes),
                {"group": "meta.k8s.io", "kind": "DeleteOptions", "causes": causes},
            )
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        options["propagationPolicy"] = policy
        return options

    async def delete(self, request: web.Request, t: Target) -> web.Response:
        options = await self._delete_options(request)
        dry_run = self._dry_run(request.query, "DeleteOptions") or options.get("dryRun") == ["All"]
        code, body = self.c.delete_object(
            t.resource,
            t.namespace or "",
            t.name,
            options.get("propagationPolicy"),
            options.get("gracePeriodSeconds"),
            options.get("preconditions"),
            dry_run,
        )
        if t.resource is R.SERVICES:
            await self.c.services.sync_proxies(t.namespace, t.name)  # closed before the answer
        return respond(body, code)

    async def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        options = await self._delete_options(request)
        predicate = self._predicate(t, request.query)
        deleted = []
        for obj in [o for o in self.c.store.list(t.resource, t.namespace) if predicate(o)]:
            meta = obj["metadata"]
            try:
                _, body = self.c.delete_object(
                    t.resource,
                    meta.get("namespace", ""),
                    meta["name"],
                    options.get("propagationPolicy"),
                    options.get("gracePeriodSeconds"),
                )
            except errors.ApiError:
                continue
            deleted.append({k: v for k, v in copy.deepcopy(obj).items() if k not in ("kind", "apiVersion")})
        return respond(
            {
                "kind": f"{t.resource.kind}List",
                "apiVersion": t.resource.api_version,
                "metadata": {"resourceVersion": str(self.c.store.rv)},
                "items": deleted,
            }
        )


def _aggregated(doc: dict) -> web.Response:
    resp = web.Response(body=dumps(doc), status=200)
    resp.headers["Content-Type"] = discovery.AGGREGATED
    return resp


def _true(value) -> bool:
    return str(value).lower() in ("true", "1")


def _patch_invalid(shown: str, message: str) -> errors.ApiError:
    """errors.NewInvalid(schema.GroupKind{}, "", field.Invalid("patch", <patched>, msg))."""
    err = errors.invalid("patch", shown, message)
    return errors.ApiError(
        422,
        "Invalid",
        f' "" is invalid: {err}',
        {"causes": [{"reason": "FieldValueInvalid", "message": err.body(), "field": "patch"}]},
    )


def _go_plus_v(value) -> str:
    """Go's %+v of a map[string]interface{} (how the SMP path shows the patch in errors)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_plus_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_plus_v(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_json_error(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        if e.msg.startswith("Expecting value"):
            return "invalid character looking for beginning of value"
        return "invalid character after top-level value" if e.msg.startswith("Extra data") else e.msg.lower()
    return str(e)
