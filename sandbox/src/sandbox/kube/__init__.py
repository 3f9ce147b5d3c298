"""The sandbox's Kubernetes API server front end.

Modules: store (objects, resourceVersion, watch fan-out), resources / discovery / openapi
(what the server says it serves), schema (field shapes from the official client models),
validation, patch, selectors, cluster (registry strategies, deletion, garbage
collection, namespaces), workloads (deployment and replica set controllers, pods),
services (allocation, proxies, endpoints), queue (controller work queues), auth and rbac
(tokens, RBAC, self reviews), handlers, table and protobuf (HTTP).  README.md says what is served and what is left out.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..web import bearer_token, front_end_middleware
from . import auth, errors
from .cluster import Cluster
from .handlers import Api, add_deprecation_warning, error_response

CLUSTER_KEY = web.AppKey("cluster", Cluster)


def create_app(runtime, settings) -> web.Application:
    cluster = Cluster(runtime, settings)
    api = Api(cluster)

    @web.middleware
    async def authn_authz(request: web.Request, handler):
        # every path, discovery included, wants a bearer token: the admin's or a ServiceAccount's
        user = cluster.authn.authenticate(bearer_token(request))
        if user is None:
            return error_response(errors.unauthorized())
        request[auth.USER] = user
        try:
            auth.check(request, user, cluster.store)  # RBAC (kube/rbac.py); the admin is allowed everything
        except errors.ApiError as e:
            return error_response(e)
        return await handler(request)

    async def on_startup(app: web.Application) -> None:
        cluster.start(asyncio.get_running_loop())

    async def on_cleanup(app: web.Application) -> None:
        await cluster.stop()

    app = web.Application(
        middlewares=[front_end_middleware(runtime, "kube"), authn_authz], client_max_size=8 * 1024 * 1024
    )
    app[CLUSTER_KEY] = cluster
    app.router.add_route("*", "/{tail:.*}", api.dispatch)
    app.on_response_prepare.append(add_deprecation_warning)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
