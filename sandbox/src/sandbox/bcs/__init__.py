"""The BCS Mesos front end: the API gateway, bcs-mesos-driver, bcs-scheduler and bcs-storage.

Modules:
  routes.py      gateway checks and the driver/storage routes
  driver.py      what bcs-mesos-driver checks and builds from a v4 body
  gojson.py      Go's encoding/json (syntax errors, typed decode, marshal)
  gotypes.py     the v4 request types as Go declares them
  scheduler.py   applications and taskgroups on runtime pods, health checks, rescheduling
  deployments.py deployments: create, rolling update, cancel/pause/resume, delete
  services.py    services, endpoints and the BCSGROUP load balancer
  configmaps.py  configmaps (create, update, delete)
  audit.py       this front end's entries in the audit log
  storage.py     bcs-storage as bcs-mesos-watch fills it, and its queries
  envelope.py    the response envelope and error codes
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from sandbox.runtime.runtime import Runtime
from sandbox.settings import Settings
from sandbox.web import front_end_middleware

from .routes import Routes
from .scheduler import Scheduler
from .storage import Storage

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, settings: Settings) -> web.Application:
    scheduler = Scheduler(runtime, settings)
    storage = Storage(settings.bcs_cluster_id)
    routes = Routes(scheduler, storage, settings)

    async def loop() -> None:
        """The scheduler's periodic work, then the watcher copying it into storage."""
        while True:
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(scheduler._wake.wait(), settings.bcs_sync_interval)
                scheduler._wake.clear()
                scheduler.tick()
                await scheduler.reconcile_proxies()
                storage.sync(scheduler)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the cluster
                log.exception("bcs scheduler tick failed")
                await asyncio.sleep(settings.bcs_sync_interval)

    async def on_startup(app: web.Application) -> None:
        scheduler._wake = asyncio.Event()
        app["bcs_loop"] = asyncio.get_running_loop().create_task(loop(), name="bcs scheduler")

    async def on_cleanup(app: web.Application) -> None:
        task = app.get("bcs_loop")
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for key in [k for k in runtime.proxies if k.startswith(f"bcs/{settings.bcs_cluster_id}/")]:
            await runtime.close_proxy(key)

    app = web.Application(middlewares=[front_end_middleware(runtime, "bcs")])
    app.router.add_route("*", "/{tail:.*}", routes.dispatch)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app["bcs_scheduler"] = scheduler
    app["bcs_storage"] = storage
    return app
