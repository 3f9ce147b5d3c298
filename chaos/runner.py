"""One chaos run from start to end, and many of them side by side.

A run (``run_scenario``), whatever its driver:
  1. the app: its own namespace and images in the shared sandbox; a first release of v1 (the
     direct driver, no faults) so that blue serves
  2. the client loop starts on the Service's port; the monitor samples pods and the audit log
  3. the release of v2 (blue -> green) under the scenario's faults (chaos.faults), driven
     directly (chaos.drivers.direct) or through the Airflow services (chaos.drivers.airflow)
  4. the faults are removed; a person does what the README says next (chaos.followup); a second
     release, if one was started, ends too
  5. the checks (chaos.invariants): the audit log, the pod samples, the client loop, the final state
  6. the app is removed from the sandbox
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from . import invariants as inv
from .apps import ChaosApp
from .drivers.direct import DirectRun
from .faults import Happening, Injector, Timeline
from .followup import follow_up
from .observe import TrafficLoop

BASE_FIELDS = {
    "readiness_timeout": "15s",
    "check_interval": "0.5s",
    "switch_timeout": "15s",
    "delete_timeout": "30s",
    "drain_delay": "1s",
    "api_retry_budget": "4s",
    "retries": 3,
    "rollback_retries": 5,
    "soak_tolerance": 0,
    "replicas": 3,
}


@dataclass
class Context:
    endpoints: object
    control: object
    monitor: object
    work_dir: Path
    ready_after: float = 0.5
    traffic_interval: float = 0.1
    services: object = None  # chaos.drivers.airflow.Stack, for the airflow driver
    restart_env: dict | None = None  # what a restarted triggerer gets (a test's stack lacks FAST_DETECTION)
    echo: object = print

    @property
    def apps_dir(self) -> Path:
        path = self.work_dir / "apps"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def log_dir(self) -> Path:
        path = self.work_dir / "runs"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class RunResult:
    scenario: object
    outcome: str = "error"
    first_outcome: str = ""
    outcomes: dict = field(default_factory=dict)
    reason: str = ""
    violations: list = field(default_factory=list)
    excused_failures: int = 0
    requests: int = 0
    duration: float = 0.0
    error: str | None = None
    followed_up: list = field(default_factory=list)
    happenings: list = field(default_factory=list)
    log: str = ""
    audit: list = field(default_factory=list)  # the namespace's audit events (the evidence)
    diagnostics: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)  # each run's task tries
    api_hits: int = 0  # API calls the injected faults hit

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario.to_json(),
            "outcome": self.outcome,
            "first_outcome": self.first_outcome,
            "outcomes": self.outcomes,
            "api_hits": self.api_hits,
            "reason": self.reason,
            "violations": [str(v) for v in self.violations],
            "excused_failures": self.excused_failures,
            "requests": self.requests,
            "duration": round(self.duration, 1),
            "error": self.error,
            "followed_up": self.followed_up,
            "happenings": self.happenings,
            "log": self.log,
            "tasks": self.tasks,
            "audit": self.audit,
            "diagnostics": self.diagnostics,
        }

    def line(self) -> str:
        status = f"{len(self.violations)} violation(s)" if self.error is None else f"ERROR {self.error.splitlines()[0]}"
        ending = self.outcome
        if self.followed_up:
            ending = f"{self.first_outcome}, then {'; '.join(self.followed_up)} -> {self.outcome}"
        return (
            f"seed {self.scenario.seed:>6} {self.scenario.driver:<7} {self.scenario.platform:<10} "
            f"{','.join(self.scenario.kinds):<40} -> {ending}: {status} ({self.duration:.0f}s)"
        )


def app_fields(scn) -> dict:
    fields = {
        **BASE_FIELDS,
        "soak": f"{scn.soak:g}s",
        "replicas": scn.replicas,
        "defer_after": "3s" if scn.driver == "airflow" else "0s",
    }
    if scn.platform == "bcs-mesos":
        fields["poll_interval"] = "0.3s"
    if scn.old_color != "delete":
        fields["old_color"] = scn.old_color
    return fields


def release_image(app, scn) -> str:
    return app.images["v2"].rsplit(":", 1)[0] + ":" + scn.image_tag


def run_scenario(scn, ctx: Context) -> RunResult:
    result = RunResult(scenario=scn)
    started = time.time()
    app = None
    try:
        apps_dir = ctx.services.apps_dir if scn.driver == "airflow" else ctx.apps_dir
        app = ChaosApp(scn.seed, scn.platform, ctx.endpoints, apps_dir, fields=app_fields(scn))
        result.log = str(ctx.log_dir / f"{scn.seed}.log")
        _run(scn, ctx, app, result)
    except Exception:  # noqa: BLE001 - the harness failed, not bluegreen: reported as an error
        result.error = traceback.format_exc()
    finally:
        result.duration = time.time() - started
        if app is not None:
            ctx.monitor.unwatch(app.namespace)
            app.cleanup()
        (ctx.log_dir / f"{scn.seed}.json").write_text(json.dumps(result.to_json(), indent=1, default=str))
    return result


def _run(scn, ctx: Context, app: ChaosApp, result: RunResult) -> None:
    app.create_namespace()
    watch = ctx.monitor.watch(app.namespace, app.image_prefix)
    setup = DirectRun(app, f"{app.name}-v1", app.images["v1"], scn.replicas, 0, result.log).execute()
    if setup.outcome != "released":
        raise RuntimeError(f"the first release (no faults) did not release: {setup.failure_summary}")
    traffic = TrafficLoop(app.traffic_url(), ctx.traffic_interval).start()
    timeline = Timeline()
    injector = Injector(scn, app, ctx.control, timeline, ready_after=ctx.ready_after)
    try:
        runs = _release(scn, ctx, app, injector, result)
    finally:
        injector.stop()
        requests_ = traffic.stop()
    final = _settled(app, ctx)
    final["probes"] = [traffic.once() for _ in range(6)]
    if not all(p.ok for p in final["probes"]):
        # for the diagnosis: what the proxies and pods were doing then, and whether it lasts
        time.sleep(2)
        result.diagnostics = {
            "proxies": [p for p in ctx.control.proxies() if app.namespace in p["name"]],
            "pods": final["pods"],
            "probes_2s_later": [vars(traffic.once()) for _ in range(6)],
        }
    ctx.monitor.poll()
    _check(app, timeline, watch, requests_, runs, final, result)
    main = runs[0]
    result.outcome, result.outcomes = main.outcome, {r.run_id: r.outcome for r in runs}
    result.reason = main.failure_summary if main.outcome != "released" else ""
    result.followed_up = list(main.followed_up)
    result.tasks = {
        r.run_id: [
            t
            if isinstance(t, dict)
            else {"task": t.task, "try": t.attempt, "result": t.result, "start": t.started, "end": t.ended}
            for t in r.tries
        ]
        for r in runs
    }
    if ctx.services is not None and scn.driver == "airflow":
        mine = {h.detail for h in timeline.happenings}
        for t, what, detail in ctx.services.kills:
            if injector.t0 <= t <= time.time() and detail not in mine:  # another Airflow run's kill, felt here too
                timeline.add(Happening(f"stack:{what}", t, t, detail))
    result.api_hits = injector.api_hits
    result.happenings = [
        f"{h.kind} at +{h.t0 - injector.t0:.1f}s: {h.detail}{'' if h.applied else ' (not applied)'}"
        for h in timeline.happenings
        if h.kind != "api-hits"
    ]


def _settled(app, ctx: Context, timeout: float = 15.0) -> dict:
    """The cluster at the end, once what the Service points at is complete with every pod ready (a
    person's late scale-up, or a pod restarting after a pod fault, converges first), or as it is after
    ``timeout``."""
    deadline = time.time() + timeout
    while True:
        final = {
            "service": app.read_service(),
            "workloads": app.read_workloads(),
            "pods": [p for p in ctx.control.pods() if p["image"].startswith(app.image_prefix)],
        }
        live = app.color_of((final["service"] or {}).get("selector"))
        mine = final["workloads"].get(app.workload(live)) if live else None
        pods = [
            p for p in final["pods"] if live and all(p["labels"].get(k) == v for k, v in app.selector_for(live).items())
        ]
        if (mine and mine["complete"] and pods and all(p["ready"] for p in pods)) or time.time() > deadline:
            return final
        time.sleep(0.5)


def _release(scn, ctx: Context, app: ChaosApp, injector: Injector, result: RunResult) -> list:
    """The release of v2 under the faults, what a person does next, and the second release if any:
    the runs, the main one first."""

    def make(run_id, image, hooks=None):
        if scn.driver == "airflow":
            from .drivers.airflow import AirflowRun

            return AirflowRun(
                ctx.services, app, run_id, image, scn.replicas, scn.soak, hooks=hooks, reason=f"chaos seed {scn.seed}"
            )
        return DirectRun(
            app, run_id, image, scn.replicas, scn.soak, result.log, hooks=hooks, reason=f"chaos seed {scn.seed}"
        )

    main = make(f"{app.name}-v2", release_image(app, scn), hooks=injector)
    runs, threads, second_started = [main], [], threading.Event()

    def start_second():
        second = make(f"{app.name}-v3", app.images["v3"])
        runs.append(second)

        def go():
            second.execute()
            follow_up(second, scn, app, ctx.control)

        thread = threading.Thread(target=go, name=f"chaos-{scn.seed}-second", daemon=True)
        threads.append(thread)
        thread.start()
        second_started.set()

    injector.mark_failed, injector.second_release = main.mark_failed, start_second
    if scn.driver == "airflow":
        injector.stack, injector.restart_env = ctx.services, ctx.restart_env
        main.prepare()  # its DAG parsed and served
    injector.arm_api_faults()
    injector.start()
    main.execute()
    injector.stop()
    result.first_outcome = main.outcome
    follow_up(main, scn, app, ctx.control)
    if scn.second_release:
        # a second release whose moment came after the first ended still starts (then it may release)
        second_started.wait(max(0.0, injector.t0 + scn.second_release["at"] - time.time()) + 5)
    for thread in threads:
        thread.join(600)
    return runs


def _check(app, timeline, watch, requests_, runs, final, result: RunResult) -> None:
    end = time.time()
    events, snapshots = list(watch.events), list(watch.snapshots)
    windows = inv.excuse_windows(app, timeline, events, snapshots, end)
    messages = [m for r in runs for m in r.messages()]
    violations = inv.check_switches(app, events, timeline) + inv.check_deletes(app, events, messages)
    violations += inv.check_ready_member(app, events, snapshots, windows)
    traffic_violations, excused = inv.check_traffic(requests_, windows)
    violations += traffic_violations
    persons = inv.persons_final_word(app, events)
    ordered = sorted(runs, key=lambda r: r.ended or end)
    violations += inv.check_final(app, final, ordered, ("blue", app.images["v1"]), persons)
    if persons is not None:
        timeline.add(Happening("excused", end, end, f"{persons}: what the Service points at now is theirs"))
    result.violations, result.excused_failures, result.requests = violations, excused, len(requests_)
    result.audit = events


def run_all(scenarios, ctx: Context, concurrency: int, airflow_lanes: int = 1, on_result=None) -> list[RunResult]:
    """Direct runs ``concurrency`` at a time; Airflow runs in ``airflow_lanes`` lanes of their own."""
    results: list[RunResult] = []
    lock = threading.Lock()

    def done(res: RunResult):
        with lock:
            results.append(res)
            if on_result:
                on_result(res)

    direct = [s for s in scenarios if s.driver == "direct"]
    airflow = [s for s in scenarios if s.driver == "airflow"]
    with (
        ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="chaos-direct") as pool,
        ThreadPoolExecutor(max_workers=max(1, airflow_lanes), thread_name_prefix="chaos-airflow") as lanes,
    ):
        futures = [lanes.submit(run_scenario, s, ctx) for s in airflow]
        futures += [pool.submit(run_scenario, s, ctx) for s in direct]
        for future in as_completed(futures):
            done(future.result())
    return sorted(results, key=lambda r: r.scenario.seed)
