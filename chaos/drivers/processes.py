"""One release step (or one trigger) in a process of its own, so that the chaos can SIGKILL it
half-way, as it kills a worker or a triggerer.

The processes are forked by a multiprocessing *forkserver* that has imported bluegreen, the
providers and the clients once (``PRELOAD``): starting a step costs a fork, not an import of
Airflow.  The step runs the real code (``bluegreen.release.steps.Release`` over
``bluegreen.platforms.platform_for(app)``, ``bluegreen.triggers.ReadinessTrigger`` /
``SoakTrigger`` on an asyncio loop) and sends back one message:

  {"ok": True, "value": ...}
  {"ok": False, "error": <class name>, "message": str, "release_error": bool, "fenced": bool}

A process that dies without a message (SIGKILL) is reported as ``killed``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass

PRELOAD = [
    "chaos.drivers.processes",
    "bluegreen.release.steps",
    "bluegreen.triggers",
    "bluegreen.platforms.kubernetes",
    "bluegreen.platforms.bcs_mesos",
    "bluegreen.run_notes",
    "airflow.providers.cncf.kubernetes.hooks.kubernetes",
    "kubernetes_asyncio.client",
    "aiohttp",
    "requests",
]

_context = None


def context():
    """The forkserver context (started on first use, with the environment of that moment)."""
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


# ----------------------------------------------------------------------------------------
# in the step's process
# ----------------------------------------------------------------------------------------
def _release(app_json: dict, run_id: str):
    from bluegreen.apps.config import AppConfig
    from bluegreen.platforms import platform_for
    from bluegreen.release.steps import Release

    app = AppConfig.from_json(app_json)
    return Release(app, platform_for(app), run_id, logger=logging.getLogger(f"bluegreen.run.{run_id}"))


async def _first_event(trigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise RuntimeError("the trigger ended without an event")


def _act(action: str, app_json: dict, run_id: str, args: dict):
    from bluegreen.release.model import Plan

    plan = Plan.from_json(args["plan"]) if "plan" in args else None
    if action == "readiness_trigger":
        from bluegreen.triggers import ReadinessTrigger

        return asyncio.run(
            _first_event(ReadinessTrigger(app_json, args["plan"], run_id, args["deadline"], args["timeout"]))
        )
    if action == "soak_trigger":
        from bluegreen.triggers import SoakTrigger

        return asyncio.run(_first_event(SoakTrigger(app_json, args["plan"], run_id)))
    release = _release(app_json, run_id)
    if action == "plan":
        result = release.plan(args["image"], args["replicas"], args["soak_seconds"])
        return result.to_json()
    if action == "rollback":
        return release.rollback(plan, args["reason"])
    if action == "soak_start":  # what SoakSensor.execute does in the worker before it defers
        state = release.start_soak(plan)
        release.readiness(plan)
        return state
    step = {
        "deploy": release.deploy,
        "switch": release.switch,
        "mark_soaked": release.mark_soaked,
        "retire_old": release.retire_old,
        "finish": release.finish,
    }[action]
    return step(plan)


def child_main(conn, action: str, app_json: dict, run_id: str, args: dict, log_path: str) -> None:
    from bluegreen.release.model import Fenced, ReleaseError

    # everything the step prints (Airflow's structlog writes the triggers' lines to stdout) goes to the run's log
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {run_id} {action} [{os.getpid()}] %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("kubernetes", "urllib3", "asyncio", "aiohttp", "airflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        value = _act(action, app_json, run_id, args)
        message = {"ok": True, "value": value}
    except ReleaseError as e:
        message = {
            "ok": False,
            "error": type(e).__name__,
            "message": str(e),
            "release_error": True,
            "fenced": isinstance(e, Fenced),
        }
    except BaseException as e:  # noqa: BLE001 - whatever it is, the task failed with it
        message = {"ok": False, "error": type(e).__name__, "message": str(e), "release_error": False, "fenced": False}
    logging.getLogger("chaos").info("%s: %s", action, message if not message["ok"] else "ok")
    handler.flush()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    conn.send(message)
    conn.close()
    os._exit(0)


# ----------------------------------------------------------------------------------------
# in the driver
# ----------------------------------------------------------------------------------------
@dataclass
class Outcome:
    ok: bool
    value: object = None
    error: str = ""
    message: str = ""
    release_error: bool = False
    fenced: bool = False
    killed: bool = False

    @property
    def summary(self) -> str:
        if self.ok:
            return "ok"
        if self.killed:
            return "killed (SIGKILL)"
        return f"{self.error}: {self.message}"


class StepProcess:
    """A step or trigger running in its own process; ``kill()`` sends SIGKILL."""

    def __init__(self, action: str, app_json: dict, run_id: str, args: dict, log_path: str):
        ctx = context()
        self.action = action
        self._recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=child_main, args=(send, action, app_json, run_id, args, log_path), daemon=True)
        self.started = time.time()
        self.proc.start()
        send.close()
        self.killed_by_chaos = False

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> bool:
        """SIGKILL the process; True if it was still running."""
        if not self.proc.is_alive():
            return False
        self.killed_by_chaos = True
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float) -> Outcome:
        message = None
        if self._recv.poll(timeout):
            try:
                message = self._recv.recv()
            except EOFError:
                message = None
        self.proc.join(5 if message is not None else 0.5)
        if self.proc.is_alive() and message is None:
            # no answer within the timeout: the driver's own deadline (a step that never ends)
            self.kill()
            self.proc.join(5)
            self._recv.close()
            return Outcome(ok=False, error="StepTimeout", message=f"no answer within {timeout:g}s (killed)")
        self._recv.close()
        if message is None:
            return Outcome(ok=False, error="Killed", message=f"exit code {self.proc.exitcode}", killed=True)
        return Outcome(
            ok=message["ok"],
            value=message.get("value"),
            error=message.get("error", ""),
            message=message.get("message", ""),
            release_error=message.get("release_error", False),
            fenced=message.get("fenced", False),
        )
