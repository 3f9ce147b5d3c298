"""The BCS front end's entries in the audit log (sandbox/audit.py), from the scheduler's
own state at the moment of the API call (not from storage, which trails it).

* service create/update/delete: ``service_selector`` with what the new selector matches.
  Matching is the load balancer's (what carries traffic): the selector against each live
  taskgroup's labels (deployment ∪ template labels), an empty selector matching the whole
  namespace.  A taskgroup counts as ready when it is Running and, with a local health
  check, checked and healthy (the scheduler's own gate, isRollingStartFinished).
* deployment (or application) delete and scale-down: ``workload_delete`` /
  ``workload_scale_down`` with the services that select its taskgroups right then.

A deployment is "fully rolled out" as the platform (plugins' bcs_mesos status) judges it:
deployment Running, its application Running with runningInstance == instance, every
taskgroup Running and healthy.
"""

from __future__ import annotations

from .model import DEP_RUNNING, END_STATES, KILLING, RUNNING, Application, selector_matches
from .model import taskgroup_healthy as healthy


def _alive(app: Application) -> list:
    return [
        tg
        for tg in app.taskgroups.values()
        if tg.status not in END_STATES and tg.status != KILLING and not tg.remove_when_ended
    ]


def _owner(scheduler, app: Application):
    """The deployment an application belongs to (bound or being rolled to), if any."""
    for dep in scheduler.deployments.values():
        if dep.namespace != app.namespace:
            continue
        if any(ref is not None and ref.name == app.id for ref in (dep.application, dep.application_ext)):
            return dep
    return None


def rolled_out(scheduler, dep) -> bool:
    app = scheduler.apps.get((dep.namespace, dep.application.name)) if dep.application else None
    if dep.status != DEP_RUNNING or app is None or app.status != RUNNING:
        return False
    if app.running_instances != app.define_instances:
        return False
    return all(healthy(tg) for tg in app.taskgroups.values())


def _dep_apps(scheduler, dep) -> list[Application]:
    refs = [r for r in (dep.application, dep.application_ext) if r is not None]
    return [a for r in refs if (a := scheduler.apps.get((dep.namespace, r.name))) is not None]


def matched(scheduler, ns: str, selector: dict | None) -> dict:
    tgs, workloads = [], {}
    for app in scheduler.apps.values():
        if app.namespace != ns or app.deleting:
            continue
        mine = [tg for tg in _alive(app) if selector_matches(selector, tg.labels)]
        if not mine and not selector_matches(selector, app.version.labels):
            continue
        tgs += mine
        dep = _owner(scheduler, app)
        key = ("deployment", dep.name) if dep is not None else ("application", app.id)
        entry = workloads.setdefault(key, {"kind": key[0], "name": key[1], "pods": 0, "ready": 0})
        entry["pods"] += len(mine)
        entry["ready"] += sum(1 for tg in mine if healthy(tg))
    out = []
    for (kind, name), entry in sorted(workloads.items()):
        if kind == "deployment":
            dep = scheduler.deployments[(ns, name)]
            apps = _dep_apps(scheduler, dep)
            entry["replicas"] = apps[0].define_instances if apps else 0
            entry["rolled_out"] = rolled_out(scheduler, dep)
        else:
            app = scheduler.apps[(ns, name)]
            entry["replicas"] = app.define_instances
            entry["rolled_out"] = (
                app.status == RUNNING
                and app.running_instances == app.define_instances
                and all(healthy(tg) for tg in app.taskgroups.values())
            )
        out.append(entry)
    return {"pods": len(tgs), "ready": sum(1 for tg in tgs if healthy(tg)), "workloads": out}


def service_changed(scheduler, ns: str, name: str, verb: str, old: dict | None, new: dict | None) -> None:
    """A service's selector was set, changed or removed: the proxies learn it late, the log now."""
    key = ("bcs", scheduler.cluster, ns, name)
    propagation = scheduler.runtime.propagation
    if verb == "create":
        propagation.created(key, new)
    elif verb == "delete":
        propagation.forget(key)
    elif old == new:
        return
    else:
        propagation.changed(key, new)
    facts = matched(scheduler, ns, new) if verb != "delete" else {"pods": 0, "ready": 0, "workloads": []}
    scheduler.runtime.audit.selector_change("bcs", ns, name, verb, old, new, facts)


def selecting(scheduler, ns: str, apps: list[Application]) -> list[dict]:
    """Services of the namespace whose selector (stored, or still routed by the load balancer)
    matches these applications' taskgroups or templates, with when it last changed."""
    labels = [app.version.labels for app in apps] + [tg.labels for app in apps for tg in _alive(app)]
    out = []
    for (svc_ns, svc_name), svc in sorted(scheduler.services.items()):
        if svc_ns != ns:
            continue
        stored = svc["Spec"]["Selector"]
        routed = scheduler.runtime.propagation.routed(("bcs", scheduler.cluster, ns, svc_name), stored)
        selects = any(selector_matches(stored, lab) for lab in labels)
        routes = any(selector_matches(routed, lab) for lab in labels)
        if selects or routes:
            out.append(
                {
                    "service": svc_name,
                    "selector": stored,
                    "routed_selector": routed,
                    "selects": selects,
                    "routes": routes,
                    "selector_changed_at": scheduler.runtime.audit.selector_changed.get(("bcs", ns, svc_name)),
                }
            )
    return out


def workload(scheduler, kind: str, ns: str, name: str) -> tuple[int, list[dict]] | None:
    """(desired instances, services selecting it) of a deployment or application, or None."""
    if kind == "deployment":
        dep = scheduler.deployments.get((ns, name))
        if dep is None:
            return None
        apps = _dep_apps(scheduler, dep)
    else:
        app = scheduler.apps.get((ns, name))
        if app is None:
            return None
        apps = [app]
    return (apps[0].define_instances if apps else 0), selecting(scheduler, ns, apps)


def workload_changed(scheduler, kind: str, ns: str, name: str, before, after: int | None) -> None:
    """Record a delete (after None) or a scale-down of a workload; ``before`` is workload()'s
    answer taken before the call changed anything."""
    if before is None:
        return
    replicas, selected_by = before
    fields = dict(api="bcs", namespace=ns, name=name, workload_kind=kind, selected_by=selected_by)
    if after is None:
        scheduler.runtime.audit.record("workload_delete", **fields, replicas=replicas)
    elif after < replicas:
        scheduler.runtime.audit.record("workload_scale_down", **fields, replicas={"from": replicas, "to": after})
