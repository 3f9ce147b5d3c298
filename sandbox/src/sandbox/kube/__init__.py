"""The sandbox's Kubernetes API server front end.

Modules: store (objects, resourceVersion, watch fan-out), resources / discovery / openapi
(what the server says it serves), schema (field shapes from the official client models),
validation, patch, selectors, cluster (registry strategies, deletion, garbage
collection, namespaces), workloads (deployment and replica set controllers, pods),
services (allocation, proxies, endpoints), queue (controller work queues), handlers,
table and protobuf (HTTP).  README.md says what is served and what is left out.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..web import front_end_middleware, token_ok
from . import errors
from .cluster import Cluster
from .handlers import Api, add_deprecation_warning, error_response

CLUSTER_KEY = web.AppKey("cluster", Cluster)


def create_app(runtime, settings) -> web.Application:
    cluster = Cluster(runtime, settings)
    api = Api(cluster)

    @web.middleware
    async def auth(request: web.Request, handler):
        # every path, discovery included, wants the bearer token
        if not token_ok(request, settings.token):
            return error_response(errors.unauthorized())
        return await handler(request)

    async def on_startup(app: web.Application) -> None:
        cluster.start(asyncio.get_running_loop())

    async def on_cleanup(app: web.Application) -> None:
        await cluster.stop()

    app = web.Application(middlewares=[front_end_middleware(runtime, "kube"), auth], client_max_size=8 * 1024 * 1024)
    app[CLUSTER_KEY] = cluster
    app.router.add_route("*", "/{tail:.*}", api.dispatch)
    app.on_response_prepare.append(add_deprecation_warning)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
