"""The BCS API gateway in front of bcs-mesos-driver and bcs-storage.

Checks in the order a request meets them:
1. the gateway route: ``/bcsapi/v4/scheduler/mesos/`` goes to the driver,
   ``/bcsapi/v4/storage/`` to storage, anything else has no route
   (apisix: ``{"error_msg":"404 Route Not Found"}``);
2. the bkbcs-auth plugin (bcs-gateway-discovery/plugins/apisix/bkbcs-auth.lua and
   bkbcs-auth/bkbcs.lua construct_identity): for the mesosdriver module a missing
   BCS-ClusterID header is a 400 "Bad Request: lost BCS-ClusterID in header" (the
   storage module does not ask for it), then a missing Authorization header is a 400
   "Bad Request: lost Authorization", one without ``Bearer <token>`` a 400
   "Bad Request: Authorization token lost", and a token user-manager does not allow a
   401 "Resource is Unauthorized";
3. the driver's HeaderValidFilter (filter/header-valid.go): BCS-ClusterID other than
   its cluster is a 400 with code 1405234 "http header BCS-ClusterID X don't exist";
4. go-restful's router: "404: Page Not Found" / "405: Method Not Allowed".
"""

from __future__ import annotations

import re

from aiohttp import web

from sandbox.web import token_ok

from . import audit, driver, envelope
from . import storage as st
from .envelope import BcsError, PlainError

MESOS_PREFIX = "/bcsapi/v4/scheduler/mesos/"
STORAGE_PREFIX = "/bcsapi/v4/storage/"
_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")

_NS = r"(?P<ns>[^/]*)"
_NAME = r"(?P<name>[^/]+)"


class Routes:
    def __init__(self, scheduler, storage: st.Storage, settings):
        self.scheduler = scheduler
        self.storage = storage
        self.settings = settings
        s = self
        # relative to /bcsapi/v4/scheduler/mesos (driver/backend/v4http/scheduler-api.go initActions)
        self.driver_routes = [
            (rf"namespaces/{_NS}/deployments", {"POST": s.create_deployment, "PUT": s.update_deployment}),
            (rf"namespaces/{_NS}/deployments/{_NAME}", {"DELETE": s.delete_deployment}),
            (
                rf"namespaces/{_NS}/deployments/{_NAME}/(?P<op>cancelupdate|pauseupdate|resumeupdate)",
                {"PUT": s.deployment_op},
            ),
            (rf"namespaces/{_NS}/deployments/{_NAME}/scale/(?P<n>[^/]+)", {"PUT": s.scale_deployment}),
            (rf"namespaces/{_NS}/services", {"POST": s.create_service, "PUT": s.update_service}),
            (rf"namespaces/{_NS}/services/{_NAME}", {"DELETE": s.delete_service}),
            (rf"namespaces/{_NS}/configmaps", {"POST": s.create_configmap, "PUT": s.update_configmap}),
            (rf"namespaces/{_NS}/configmaps/{_NAME}", {"DELETE": s.delete_configmap}),
            (rf"namespaces/{_NS}/applications", {"POST": s.create_application}),
            (rf"namespaces/{_NS}/applications/{_NAME}", {"DELETE": s.delete_application}),
            (rf"namespaces/{_NS}/applications/{_NAME}/scale/(?P<n>[^/]+)", {"PUT": s.scale_application}),
            (rf"definition/(?P<kind>deployment|application)/{_NS}/{_NAME}", {"GET": s.definition}),
        ]
        # relative to /bcsapi/v4/storage (-> /bcsstorage/v1)
        self.storage_routes = [
            (
                r"query/mesos/dynamic/clusters/(?P<cluster>[^/]+)/(?P<kind>taskgroup|application|process|deployment|"
                r"service|configmap|secret|endpoints|exportservice)",
                {"GET": s.query, "POST": s.query},
            ),
            (r"query/mesos/dynamic/clusters/(?P<cluster>[^/]+)/namespace", {"GET": s.namespaces, "POST": s.namespaces}),
            (
                rf"mesos/dynamic/namespace_resources/clusters/(?P<cluster>[^/]+)/namespaces/{_NS}/(?P<type>[^/]+)/"
                rf"{_NAME}",
                {"GET": s.inspect},
            ),
            (
                rf"mesos/dynamic/namespace_resources/clusters/(?P<cluster>[^/]+)/namespaces/{_NS}/(?P<type>[^/]+)",
                {"GET": s.list_namespace},
            ),
        ]

    # -- dispatch ---------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith(MESOS_PREFIX):
            module, rest, table = "mesosdriver", path[len(MESOS_PREFIX) :], self.driver_routes
        elif path.startswith(STORAGE_PREFIX):
            module, rest, table = "storage", path[len(STORAGE_PREFIX) :], self.storage_routes
        else:
            return web.json_response({"error_msg": "404 Route Not Found"}, status=404)
        denied = self._authenticate(request, module)
        if denied is not None:
            return denied
        if module == "mesosdriver":
            cluster = request.headers.get("BCS-ClusterID", "")
            if cluster != self.settings.bcs_cluster_id:
                return envelope.driver_filter(f"http header BCS-ClusterID {cluster} don't exist")
        allowed = False
        for pattern, methods in table:
            match = re.fullmatch(pattern, rest)
            if match is None:
                continue
            allowed = True
            handler = methods.get(request.method)
            if handler is None:
                continue
            try:
                return await handler(request, **match.groupdict())
            except (BcsError, PlainError) as e:
                return e.response()
        return envelope.restful_method_not_allowed() if allowed else envelope.restful_not_found()

    def _authenticate(self, request: web.Request, module: str) -> web.Response | None:
        if module == "mesosdriver" and "BCS-ClusterID" not in request.headers:
            return envelope.gateway(400, "Bad Request: lost BCS-ClusterID in header")
        header = request.headers.get("Authorization")
        if header is None:
            return envelope.gateway(400, "Bad Request: lost Authorization")
        if not _BEARER.match(header):
            return envelope.gateway(400, "Bad Request: Authorization token lost")
        if not token_ok(request, self.settings.token):
            return envelope.gateway(401, "Resource is Unauthorized")
        return None

    async def _changed(self) -> None:
        """Let the load balancer and the watcher see a write at once."""
        await self.scheduler.reconcile_proxies()
        self.scheduler.wake()

    # -- deployments ------------------------------------------------------------------
    async def create_deployment(self, request, ns):
        self.scheduler.create_deployment(driver.deployment_def(await request.read()))
        await self._changed()
        return envelope.success()

    async def update_deployment(self, request, ns):
        if request.query.get("args") == "resource":
            raise BcsError(
                envelope.SCHED_COMMON, "sandbox: args=resource (in-place resource update) is not implemented"
            )
        self.scheduler.update_deployment(driver.deployment_def(await request.read()))
        await self._changed()
        return envelope.success()

    async def delete_deployment(self, request, ns, name):
        before = audit.workload(self.scheduler, "deployment", ns, name)
        self.scheduler.delete_deployment(ns, name, request.query.get("enforce") == "1")
        audit.workload_changed(self.scheduler, "deployment", ns, name, before, None)
        await self._changed()
        return envelope.success()

    async def deployment_op(self, request, ns, name, op):
        if op == "cancelupdate":
            await self.scheduler.cancel_update(ns, name)
        elif op == "pauseupdate":
            self.scheduler.pause_update(ns, name)
        else:
            self.scheduler.resume_update(ns, name)
        await self._changed()
        return envelope.success()

    async def scale_deployment(self, request, ns, name, n):
        before = audit.workload(self.scheduler, "deployment", ns, name)
        self.scheduler.scale_deployment(ns, name, n)
        audit.workload_changed(self.scheduler, "deployment", ns, name, before, int(n))
        await self._changed()
        return envelope.success()

    async def definition(self, request, kind, ns, name):
        return envelope.success(self.scheduler.definition(kind, ns, name))

    # -- applications -----------------------------------------------------------------
    async def create_application(self, request, ns):
        self.scheduler.build_application(driver.application_version(await request.read()))
        await self._changed()
        return envelope.success()

    async def delete_application(self, request, ns, name):
        before = audit.workload(self.scheduler, "application", ns, name)
        self.scheduler.delete_application_api(ns, name, request.query.get("enforce") == "1")
        audit.workload_changed(self.scheduler, "application", ns, name, before, None)
        await self._changed()
        return envelope.success()

    async def scale_application(self, request, ns, name, n):
        before = audit.workload(self.scheduler, "application", ns, name)
        self.scheduler.scale_application_api(ns, name, n)
        audit.workload_changed(self.scheduler, "application", ns, name, before, int(n))
        await self._changed()
        return envelope.success()

    # -- services -----------------------------------------------------------------------
    async def create_service(self, request, ns):
        self.scheduler.create_service(driver.service_body(await request.read()))
        await self._changed()
        return envelope.success()

    async def update_service(self, request, ns):
        self.scheduler.update_service(driver.service_body(await request.read()))
        await self._changed()
        return envelope.success()

    async def delete_service(self, request, ns, name):
        self.scheduler.delete_service(ns, name)
        await self._changed()
        return envelope.success()

    # -- configmaps ---------------------------------------------------------------------
    async def create_configmap(self, request, ns):
        # the body is read first: the existence check and the save then run without a pause
        self.scheduler.create_configmap(driver.configmap_body(await request.read()))
        self.scheduler.wake()
        return envelope.success()

    async def update_configmap(self, request, ns):
        self.scheduler.update_configmap(driver.configmap_body(await request.read()))
        self.scheduler.wake()
        return envelope.success()

    async def delete_configmap(self, request, ns, name):
        self.scheduler.delete_configmap(ns, name)
        self.scheduler.wake()
        return envelope.success()

    # -- storage ------------------------------------------------------------------------
    async def _params(self, request) -> dict | None:
        """getParam: the query string for GET, the JSON body for POST (None when it is not an object)."""
        if request.method == "GET":
            return {k: request.query.getone(k) for k in request.query}
        raw = await request.read()
        if not raw.strip() or driver.gojson.syntax_error(raw) is not None:
            return None
        value = driver.gojson._plain(driver.gojson.loads(raw))
        return value if isinstance(value, dict) else None

    async def query(self, request, cluster, kind):
        params = await self._params(request)
        try:
            if params is None:
                raise st.QueryError("body is not a JSON object")
            docs = st.query(self.storage, cluster, kind, params)
        except st.QueryError:
            return envelope.storage([], envelope.STORAGE_LIST_FAIL, envelope.STORAGE_LIST_FAIL_STR)
        return envelope.storage(docs)

    async def namespaces(self, request, cluster):
        return envelope.storage(st.namespaces(self.storage, cluster))

    async def inspect(self, request, cluster, ns, type, name):
        doc = self.storage.get(cluster, ns, type, name)
        if doc is None:
            return envelope.storage(None, envelope.STORAGE_NOT_EXIST, envelope.STORAGE_NOT_EXIST_STR)
        return envelope.storage(doc)

    async def list_namespace(self, request, cluster, ns, type):
        docs = self.storage.documents(type, cluster, [ns])
        fields = [f for f in request.query.get("field", "").split(",") if f]
        return envelope.storage([st._project(d, fields) for d in docs] if fields else docs)
