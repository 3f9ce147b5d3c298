"""Fault injection: each scenario's faults, at their moments, and a timeline of what was done.

  API faults   the sandbox's control endpoint (POST /faults), scoped to the run's namespace so
               that concurrent runs do not hit each other: Kubernetes paths ``/namespaces/<ns>/``;
               BCS paths naming the namespace, and bcs-storage queries whose body names it (the
               fault's ``times`` is split between the two)
  pod faults   POST /pods/<name>/kill|evict|unready on a ready member of the new color, a moment
               after the soak began
  a person     chaos.apps.ChaosApp.person (the real kubectl, raw BCS calls), or marking the
               running task failed (the driver's ``mark_failed``)
  kills        the driver's: ``on_process`` hears of every process the direct driver starts and
               kills the scenario's target a moment after it started; the airflow driver kills
               Airflow's processes itself

Everything that happened goes on the ``Timeline`` (times are wall clock, like the audit log's):
the invariant checks excuse what a person or a pod fault caused, and nothing else.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import requests

from .apps import PersonError

# How long after a kill the task instance is read again, to tell a kill that ended a task from one
# that landed after the task had reported success (its state is then success, its try the same).
KILL_LANDED_AFTER = 2.0
# Task instance states after which a task runs no more in this try.
FINISHED_STATES = ("success", "failed", "upstream_failed", "skipped")


@dataclass
class Happening:
    kind: str
    t0: float  # when it started
    t1: float  # when it was done (a command's answer; a pod fault's effect is over later)
    detail: str = ""
    applied: bool = True
    color: str | None = None
    lasts: float = 0.0  # seconds its effect lasts after t1 (a pod down, unready)


@dataclass
class Timeline:
    happenings: list[Happening] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, happening: Happening) -> Happening:
        with self._lock:
            self.happenings.append(happening)
        return happening


def api_fault_specs(app, fault: dict) -> list[dict]:
    """The control endpoint's fault specs for one scenario fault on ``app``'s namespace (all of its
    calls, or only those on its Service or its workloads: the spec's ``target``)."""
    spec = dict(fault["spec"])
    target = spec.pop("target", None)
    ns = re.escape(app.namespace)
    if app.api == "kube":
        path = {None: "", "service": "services/", "workload": "deployments"}[target]
        return [{"api": "kube", "path": f"/namespaces/{ns}/{path}", **spec}]
    if target is not None:
        kinds = {"service": "services?", "workload": "(deployments?|application)"}[target]
        return [{"api": "bcs", "path": f"/{ns}/{kinds}(/|$)", **spec}]
    times = spec.pop("times")
    first = max(1, (times + 1) // 2)
    specs = [{"api": "bcs", "path": f"/{ns}(/|$)", **spec, "times": first}]
    if times - first > 0:
        specs.append(
            {
                "api": "bcs",
                "path": "^/bcsapi/v4/storage/query/",
                "request_body": f'"namespace": "{ns}"',
                **spec,
                "times": times - first,
            }
        )
    return specs


class Injector:
    """One scenario's faults on one run.  ``start`` arms them relative to now (the release's start)."""

    def __init__(self, scenario, app, control, timeline: Timeline, ready_after: float = 0.5):
        self.scn, self.app, self.control, self.timeline = scenario, app, control, timeline
        self.ready_after = ready_after
        self.fault_ids: list[int] = []
        self._times: dict[int, int] = {}
        self.api_hits = 0
        self._timers: list[threading.Timer] = []
        self._stopped = threading.Event()
        self.t0 = 0.0
        self._kill_armed = scenario.kill is not None and scenario.kill["kind"] in ("kill-worker", "kill-triggerer")
        self._lock = threading.Lock()
        self._busy = 0
        self._pod_fault_armed = scenario.pod_fault is not None
        # the driver's hands
        self.mark_failed = None  # (task or None) -> task marked, or None when no sensor runs now
        self.second_release = None  # () -> None: start the second run
        self.new_color = "green"
        # the airflow driver's: chaos.drivers.airflow.Stack, and the environment a restarted triggerer gets
        self.stack = None
        self.restart_env: dict | None = None
        self._seen: dict[str, tuple[int, str]] = {}

    # -- arming -------------------------------------------------------------------------------------
    def arm_api_faults(self) -> None:
        for fault in self.scn.api_faults:
            for spec in api_fault_specs(self.app, fault):
                api, method, path = spec.pop("api"), spec.pop("method", "*"), spec.pop("path")
                injected = self.control.fault(api, method, path, **spec)
                self.fault_ids.append(injected["id"])
                self._times[injected["id"]] = injected["times"]
            self.timeline.add(Happening(f"api:{fault['kind']}", time.time(), time.time(), str(fault["spec"])))

    def start(self) -> None:
        self.t0 = time.time()
        person = self.scn.person
        if person:
            self._at(person["at"], self._person)
        if self.scn.kill and self.scn.kill["kind"] == "kill-scheduler" and self.stack is not None:
            self._at(self.scn.kill["at"], self._kill_scheduler)
        if self.scn.second_release and self.second_release is not None:
            # not stopped with the rest: a second release whose moment comes after the first
            # ended still starts (and then it may release)
            timer = threading.Timer(self.scn.second_release["at"], self._second)
            timer.daemon = True
            timer.start()

    def _at(self, seconds: float, fn) -> None:
        timer = threading.Timer(max(0.0, self.t0 + seconds - time.time()), self._guarded(fn))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _guarded(self, fn):
        def run():
            with self._lock:
                if self._stopped.is_set():
                    return
                self._busy += 1
            try:
                fn()
            finally:
                with self._lock:
                    self._busy -= 1

        return run

    def stop(self) -> list[dict]:
        """Stop what is still to come (it is on the timeline as not applied: the run had ended) and
        remove the API faults left; returns the faults as they were left."""
        with self._lock:
            self._stopped.set()
        for timer in self._timers:
            timer.cancel()
        deadline = time.time() + 30  # a person's command already typed finishes (with its retries)
        while self._busy and time.time() < deadline:
            time.sleep(0.05)
        now = time.time()
        kinds = {h.kind for h in self.timeline.happenings}
        if self.scn.person and self.scn.person["kind"] not in kinds:
            self.timeline.add(
                Happening(
                    self.scn.person["kind"],
                    now,
                    now,
                    f"the release had ended before its moment (+{self.scn.person['at']:g}s)",
                    applied=False,
                )
            )
        if self.scn.kill and self.scn.kill["kind"] not in kinds:
            what = (
                f"the release had ended before its moment (+{self.scn.kill['at']:g}s)"
                if "at" in self.scn.kill
                else f"no {self.scn.kill['task']} process was running at its moment"
            )
            self.timeline.add(Happening(self.scn.kill["kind"], now, now, what, applied=False))
        if self.scn.pod_fault and self.scn.pod_fault["kind"] not in kinds:
            self.timeline.add(
                Happening(self.scn.pod_fault["kind"], now, now, "the soak did not run long enough", applied=False)
            )
        left = []
        try:
            active = {f["id"]: f for f in self.control.faults()}
        except requests.RequestException:
            active = {}
        for fid in self.fault_ids:
            if fid in active:
                left.append(active[fid])
                try:
                    self.control.remove_fault(fid)
                except requests.HTTPError:
                    pass
        if self.fault_ids and not getattr(self, "_counted", False):
            self._counted = True
            # a fault no longer listed used up all its hits
            hits = sum(active[fid]["hits"] if fid in active else self._times[fid] for fid in self.fault_ids)
            self.api_hits = hits
            self.timeline.add(Happening("api-hits", now, now, f"{hits} API calls hit by the injected faults"))
        return left

    # -- a person -----------------------------------------------------------------------------------
    def _person(self) -> None:
        person = self.scn.person
        kind = person["kind"]
        t0 = time.time()
        if kind == "person-rollback":
            task = None
            deadline = t0 + 60
            while task is None and time.time() < deadline and not self._stopped.is_set():
                task = self.mark_failed(None) if self.mark_failed else None
                if task is None:
                    time.sleep(0.1)
            self.timeline.add(
                Happening(
                    kind,
                    t0,
                    time.time(),
                    f"marked {task} failed" if task else "no task was running to mark failed",
                    applied=task is not None,
                )
            )
            return
        action, color = {
            "person-scale": ("scale", person.get("color")),
            "person-switch": ("switch", person.get("color")),
            "person-delete-green": ("delete", "green"),
        }[kind]
        try:
            out = self.app.person(action, color, person.get("replicas"))
            applied, detail = (
                True,
                f"{action} {color}{' to ' + str(person['replicas']) if action == 'scale' else ''}: {out.strip()[:120]}",
            )
        except PersonError as e:
            applied, detail = False, f"{action} {color}: {e}"
        self.timeline.add(Happening(kind, t0, time.time(), detail, applied=applied, color=color))

    def _second(self) -> None:
        t0 = time.time()
        self.timeline.add(Happening("second-release", t0, t0, "a second run of the app started"))
        self.second_release()

    def soak_started(self, new_color: str) -> None:
        if self._pod_fault_armed:
            self._pod_fault_armed = False
            self.new_color = new_color
            self._at(time.time() - self.t0 + self.scn.pod_fault["after"], self.pod_fault)

    # -- the direct driver's processes ---------------------------------------------------------------
    def on_phase(self, run, phase: str) -> None:
        if phase == "soak":
            self.soak_started((run.plan or {}).get("new_color", "green"))

    def on_process(self, run, kind: str, task: str, proc) -> None:
        kill = self.scn.kill
        if not self._kill_armed or kill is None:
            return
        wanted = "worker" if kill["kind"] == "kill-worker" else "triggerer"
        if kind != wanted:
            return
        self._latest = (task, proc)
        # the target task, or (when it ended before the kill's moment) the next one of its kind
        target = kill["task"]
        if task != target and not getattr(self, "_kill_passed", False):
            return

        def fire():
            with self._lock:
                if not self._kill_armed or self._stopped.is_set():
                    return
                victim, name = proc, task
                if not victim.alive():
                    # it ended first: the process of its kind running now gets it, or the next one
                    latest = getattr(self, "_latest", None)
                    if latest is None or latest[1] is proc or not latest[1].alive():
                        self._kill_passed = True
                        return
                    name, victim = latest
                if victim.kill():
                    self._kill_armed = False
                    self.timeline.add(
                        Happening(
                            kill["kind"],
                            time.time(),
                            time.time(),
                            f"SIGKILL {victim.action} ({name}) {time.time() - victim.started:.2f}s in",
                        )
                    )
                else:
                    self._kill_passed = True

        # a fallback (the target ended before its moment) is killed as soon as it started
        timer = threading.Timer(
            kill["delay"] if task == target and not getattr(self, "_kill_passed", False) else 0.05, fire
        )
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # -- the airflow driver's task instances ------------------------------------------------------------
    def on_tasks(self, run, tis: dict) -> None:
        """The run's task instances as just read over REST (every 0.5 s)."""
        soak = tis.get("soak") or {}
        if soak.get("state") in ("running", "deferred") and self._pod_fault_armed:
            self.soak_started((run.plan or {}).get("new_color", "green"))
        kill = self.scn.kill
        if not self._kill_armed or kill is None or self._stopped.is_set():
            return
        if kill["kind"] == "kill-worker":
            order = [
                "plan",
                "deploy_new_color",
                "wait_until_ready",
                "switch_traffic",
                "soak",
                "retire_old_color",
                "finish",
                "rollback",
            ]
            passed = getattr(self, "_kill_passed", False)
            target = tis.get(kill["task"]) or {}
            if not passed and kill["task"] not in self._seen and target.get("state") in FINISHED_STATES:
                # The target ran between two polls (0.5 s apart; a switch takes 0.3 s here) and was
                # never seen running: the kill passes on to the next task that runs, as a kill that
                # came too late does.
                self._kill_passed = passed = True
            for name in order:
                ti = tis.get(name) or {}
                if ti.get("state") != "running" or not ti.get("pid") or (name != kill["task"] and not passed):
                    continue
                key = (ti["try_number"], str(ti["pid"]))
                if self._seen.get(name) == key:
                    continue
                self._seen[name] = key
                self._later(kill["delay"], lambda ti=ti: self._kill_ti(run, ti))
        elif kill["kind"] == "kill-triggerer" and soak.get("state") == "deferred" and "soak" not in self._seen:
            self._seen["soak"] = (soak["try_number"], "deferred")
            self._later(kill["delay"], self._kill_triggerer)

    def _later(self, seconds: float, fn) -> None:
        timer = threading.Timer(seconds, self._guarded(fn))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _kill_ti(self, run, seen: dict) -> None:
        with self._lock:
            if not self._kill_armed:
                return
            ti = run.rest.task_instance(run.dag_id, run.run_id, seen["task_id"])
            if ti["state"] != "running" or ti.get("pid") != seen.get("pid"):
                self._kill_passed = True
                return
            detail = self.stack.kill_task(ti, worker=self.scn.kill.get("mode") == "worker")
            if detail:
                self._kill_armed = False
                happening = self.timeline.add(Happening("kill-worker", time.time(), time.time(), detail))
                self._later(KILL_LANDED_AFTER, lambda: self._check_kill(run, ti, happening))

    def _check_kill(self, run, killed: dict, happening: Happening) -> None:
        """A task is seen running until its process has reported its end: a kill that lands after the
        task reported success killed nothing that mattered.  It is then on the timeline as not
        applied, and passes on to the next task that runs, as a kill that came too late does."""
        with self._lock:
            ti = run.rest.task_instance(run.dag_id, run.run_id, killed["task_id"])
            if ti["try_number"] == killed["try_number"] and ti["state"] == "success" and not self._stopped.is_set():
                happening.applied = False
                happening.detail += " after the task had reported success"
                self._kill_armed, self._kill_passed = True, True

    def _kill_triggerer(self) -> None:
        with self._lock:
            if not self._kill_armed:
                return
            self._kill_armed = False
            t0 = time.time()
            detail = self.stack.kill_component("triggerer", self.restart_env)
            self.timeline.add(Happening("kill-triggerer", t0, time.time(), detail))

    def _kill_scheduler(self) -> None:
        t0 = time.time()
        detail = self.stack.kill_component("scheduler")
        self.timeline.add(Happening("kill-scheduler", t0, time.time(), detail))

    # -- pods ---------------------------------------------------------------------------------------
    def pod_fault(self, color: str | None = None) -> None:
        fault = self.scn.pod_fault
        color = color or self.new_color
        selector = self.app.selector_for(color)
        t0 = time.time()
        members = [
            p
            for p in self.control.pods()
            if p["image"].startswith(self.app.image_prefix)
            and p["ready"]
            and all(p["labels"].get(k) == v for k, v in selector.items())
        ]
        if not members:
            self.timeline.add(Happening(fault["kind"], t0, time.time(), f"no ready member of {color}", applied=False))
            return
        pod = members[0]["name"]
        seconds = fault["seconds"]
        try:
            if fault["kind"] == "pod-kill":
                self.control.kill_pod(pod, down=seconds)
                lasts = seconds + self.ready_after + 1
            elif fault["kind"] == "pod-evict":
                self.control.evict_pod(pod)
                lasts = self.ready_after + 3
            else:
                self.control.unready_pod(pod, seconds)
                lasts = seconds + 1
            applied = True
        except requests.HTTPError as e:
            applied, lasts = False, 0.0
            pod = f"{pod}: {e}"
        self.timeline.add(
            Happening(
                fault["kind"],
                t0,
                time.time(),
                f"{fault['kind']} {pod} ({color})",
                applied=applied,
                color=color,
                lasts=lasts,
            )
        )
