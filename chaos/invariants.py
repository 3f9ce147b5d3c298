"""The invariants, checked from the audit log, the client loop, the pod samples and the final
reads of the cluster.  Each check returns ``Violation``s; chaos/README.md defines each one.

  switched-unready   every selector change of the app's Service made by bluegreen (audit actor
                     ``bluegreen/...``) that selects a color selects a workload that the platform
                     calls fully rolled out at that moment (audit ``matched.workloads[].rolled_out``),
                     with at least one ready member
  deleted-live       no bluegreen delete or scale-down of a workload that the app's Service selects
                     (audit ``selected_by[].selects``) when that selector had been in place for more
                     than 1 s; within 1 s (a person's switch racing the delete), bluegreen must put
                     the Service back (a later bluegreen selector change away from it) or say that it
                     could not; nor of a workload the proxies still route to (``routes``) right after
                     bluegreen's own switch away from it (not drained)
  no-ready-member    at every pod sample (every 0.5 s), the color the Service selects has a ready member
  client-failure     no request of the client loop fails
  final-state        at the end: the Service points at exactly one color, its workload is complete and
                     every one of its pods ready, the release lock is gone, requests through the
                     Service are answered by it; the run's outcome, note and the Service's record and
                     history agree with what is live, and no run is left failed

A person's own change and a pod-level fault excuse what they cause: no-ready-member and
client-failure are not checked inside a window around them (``excuse_windows``), and a
switched-unready caused by a person's scale or delete of that color, or a pod fault on it, in the
1 s before the switch is excused (a race no API closes).  API faults, process kills and a second release excuse nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

BLUEGREEN = "bluegreen/"
OTHER = {"blue": "green", "green": "blue"}


@dataclass
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def is_bluegreen(event: dict) -> bool:
    return str(event.get("actor") or "").startswith(BLUEGREEN)


def selector_events(app, events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] == "service_selector" and e.get("service") == app.service]


def selector_at(app, events: list[dict], t: float) -> dict | None:
    """The Service's stored selector at ``t`` (None: no Service, or none recorded yet)."""
    current = None
    for e in selector_events(app, events):
        if e["time"] > t:
            break
        current = e.get("new_selector")
    return current


def _labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ready_in(snapshots, selector: dict, before: float) -> bool | None:
    """Whether the last pod sample before ``before`` had a ready pod matching ``selector``."""
    last = None
    for s in snapshots:
        if s.t1 <= before:
            last = s
    if last is None:
        return None
    return any(p["ready"] and _labels_match(selector, p["labels"]) for p in last.pods)


# ---------------------------------------------------------------------------------------------
# excuses: what a person or a pod fault caused
# ---------------------------------------------------------------------------------------------
def excuse_windows(app, timeline, events: list[dict], snapshots, end: float) -> list[tuple[float, float, str]]:
    """When a person's change or a pod fault may have cost traffic: (start, end, why)."""
    writes = [e for e in selector_events(app, events) if is_bluegreen(e)]
    windows = []
    for h in timeline.happenings:
        if not h.applied:
            continue
        if h.kind.startswith("pod-"):
            windows.append((h.t0 - 0.5, h.t1 + h.lasts + 3.0, h.kind))
        elif h.kind == "person-scale":
            windows.append((h.t0 - 0.5, h.t1 + 6.0, h.kind))
        elif h.kind in ("person-switch", "person-delete-green"):
            # a race: bluegreen switched to the color a person had just deleted (within 1 s; bluegreen had
            # checked it before): the person's delete harmed what went live, until bluegreen switched again
            raced = [
                e["time"]
                for e in writes
                if h.t0 <= e["time"] <= h.t1 + 1.0
                and h.kind == "person-delete-green"
                and app.color_of(e.get("new_selector") or {}) == h.color
            ]
            if h.kind == "person-switch":
                # to a color that had a ready member, and that nobody had just started to delete
                deleting = any(
                    e["kind"] == "workload_delete"
                    and e.get("name") == app.workload(h.color)
                    and h.t0 - 10.0 <= e["time"] <= h.t1
                    for e in events
                )
                harmless = _ready_in(snapshots, app.selector_for(h.color), h.t0) is True and not deleting
            else:
                selected = selector_at(app, events, h.t0) or {}
                harmless = app.color_of(selected) != h.color and not raced
            if harmless:
                windows.append((h.t0 - 0.5, h.t1 + 6.0, h.kind))
            else:
                # until bluegreen changed the selector again (and that change reached the proxies)
                since = raced[0] if raced else h.t0
                later = [e["time"] for e in writes if e["time"] > since]
                windows.append((h.t0 - 0.5, max(h.t1 + 6.0, later[0] + 3.0) if later else end, h.kind))
    return windows


def excused(windows, t0: float, t1: float) -> str | None:
    for start, stop, why in windows:
        if t0 <= stop and t1 >= start:
            return why
    return None


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
def check_switches(app, events: list[dict], timeline) -> list[Violation]:
    out = []
    for e in selector_events(app, events):
        color = app.color_of(e.get("new_selector")) if e.get("new_selector") else None
        if not is_bluegreen(e) or color is None:
            continue  # a person's change, or one that selects no color (a first release's placeholder)
        name = app.workload(color)
        matched = e.get("matched") or {}
        workload = next((w for w in matched.get("workloads") or [] if w.get("name") == name), None)
        if workload and workload.get("rolled_out") and workload.get("ready", 0) >= 1 and matched.get("ready", 0) >= 1:
            continue
        cause = [
            h
            for h in timeline.happenings
            if h.applied
            and h.color == color
            and e["time"] - 1.0 <= h.t1
            and h.t0 <= e["time"]
            and (h.kind.startswith("pod-") or h.kind in ("person-scale", "person-delete-green"))
        ]
        if cause:
            continue
        out.append(
            Violation(
                "switched-unready",
                f"bluegreen switched {app.service} to {e['new_selector']} at "
                f"{e['time']:.3f} (audit seq {e['seq']}) when it matched {matched}",
            )
        )
    return out


def check_deletes(app, events: list[dict], messages: list[str]) -> list[Violation]:
    out = []
    sel_events = selector_events(app, events)
    for e in events:
        if e["kind"] not in ("workload_delete", "workload_scale_down") or not is_bluegreen(e):
            continue
        for entry in e.get("selected_by") or []:
            if entry.get("service") != app.service:
                continue
            what = f"bluegreen's {e['kind']} of {e.get('name')} at {e['time']:.3f} (audit seq {e['seq']})"
            if entry.get("selects"):
                changed = entry.get("selector_changed_at") or 0.0
                age = e["time"] - changed
                if age > 1.0:
                    out.append(
                        Violation(
                            "deleted-live",
                            f"{what}: the Service {app.service} had selected it "
                            f"({entry.get('selector')}) for {age:.1f}s",
                        )
                    )
                    continue
                put_back = any(
                    is_bluegreen(s) and s["time"] > e["time"] and s.get("old_selector") == entry.get("selector")
                    for s in sel_events
                )
                said = any("nothing may be serving" in m for m in messages)
                if not (put_back or said):
                    out.append(
                        Violation(
                            "deleted-live",
                            f"{what}: the Service was switched to it {age:.2f}s before "
                            "(a race), and bluegreen neither put the Service back nor "
                            "said it could not",
                        )
                    )
            elif entry.get("routes"):
                before = [s for s in sel_events if s["time"] <= e["time"]]
                if before and is_bluegreen(before[-1]):
                    out.append(
                        Violation(
                            "deleted-live",
                            f"{what}: the proxies still routed "
                            f"{entry.get('routed_selector')} to it after bluegreen's own "
                            f"switch away {e['time'] - before[-1]['time']:.2f}s before "
                            "(not drained)",
                        )
                    )
    return out


def check_ready_member(app, events: list[dict], snapshots, windows) -> list[Violation]:
    out, episode = [], None
    for s in snapshots:
        sel0, sel1 = selector_at(app, events, s.t0), selector_at(app, events, s.t1)
        bad = False
        if sel0 and sel0 == sel1 and app.color_of(sel0):
            members = [p for p in s.pods if _labels_match(sel0, p["labels"])]
            bad = not any(p["ready"] for p in members) and not excused(windows, s.t0, s.t1)
        if bad:
            if episode is None:
                episode = [s.t0, s.t1, sel0, len([p for p in s.pods if _labels_match(sel0, p["labels"])])]
            episode[1] = s.t1
        elif episode is not None:
            out.append(episode)
            episode = None
    if episode is not None:
        out.append(episode)
    return [
        Violation(
            "no-ready-member",
            f"the Service selected {sel} and none of its {n} pod(s) was ready from {t0:.3f} to {t1:.3f}",
        )
        for t0, t1, sel, n in out
    ]


def check_traffic(requests_, windows) -> tuple[list[Violation], int]:
    failed = [r for r in requests_ if not r.ok]
    blamed = [r for r in failed if not excused(windows, r.t0, r.t1)]
    if not blamed:
        return [], len(failed)
    details = sorted({r.detail for r in blamed})
    return [
        Violation(
            "client-failure",
            f"{len(blamed)} of {len(requests_)} requests failed outside any person's "
            f"or pod fault's window, from {blamed[0].t0:.3f} to {blamed[-1].t1:.3f}: "
            f"{', '.join(details)}",
        )
    ], len(failed) - len(blamed)


def persons_last_switch(app, events: list[dict]) -> dict | None:
    """The last change of the Service's selector, when a person made it (after bluegreen's last)."""
    changes = [e for e in selector_events(app, events) if e.get("verb") != "delete"]
    return changes[-1] if changes and not is_bluegreen(changes[-1]) else None


def persons_final_word(app, events: list[dict]) -> str | None:
    """Why what the Service points at in the end is a person's doing, if it is: their switch came after
    bluegreen's last, or they deleted the color it points at after it was switched there."""
    switch = persons_last_switch(app, events)
    if switch is not None:
        return f"the Service's last selector change was a person's ({switch['actor'][:20]}: {switch['new_selector']})"
    changes = [e for e in selector_events(app, events) if e.get("verb") != "delete"]
    if not changes:
        return None
    live = app.color_of(changes[-1].get("new_selector") or {})
    for e in events:
        if (
            e["kind"] == "workload_delete"
            and not is_bluegreen(e)
            and e["time"] >= changes[-1]["time"]
            and live is not None
            and e.get("name") == app.workload(live)
        ):
            return f"a person ({e['actor'][:20]}) deleted {e['name']}, the color the Service points at"
    return None


def check_final(
    app, final: dict, runs: list, setup_expect: tuple[str, str], persons_word: str | None = None
) -> list[Violation]:
    """``final``: {"service", "workloads", "pods", "probes"}; ``runs``: the run handles, in the order they
    ended; ``setup_expect``: (color, image) live before the chaos run; ``persons_word``: why what the
    Service points at is a person's doing (``persons_final_word``): then what follows from it is not
    checked (which color the Service points at, its pods, what answers, whether that agrees with the
    runs' outcomes), the rest is."""
    from bluegreen.release import records as rec

    out = []

    def bad(detail, pointing: bool = False):
        if not (pointing and persons_word is not None):
            out.append(Violation("final-state", detail))

    svc = final["service"]
    if svc is None:
        bad(f"the Service {app.service} does not exist")
        return out
    if rec.LOCK in svc["annotations"]:
        bad(f"the release lock is left: {svc['annotations'][rec.LOCK]}")
    _check_runs(runs, svc, bad)
    live = app.color_of(svc["selector"])
    if live is None or svc["selector"] != app.selector_for(live):
        bad(f"the Service selects {svc['selector']}, not exactly one color", pointing=True)
        return out
    workloads = final["workloads"]
    mine = workloads.get(app.workload(live))
    if mine is None:
        bad(f"the Service points at {live}, whose workload does not exist", pointing=True)
        return out
    if not mine["complete"] or mine["replicas"] < 1:
        bad(f"{app.workload(live)} is not fully rolled out: {mine}", pointing=True)
    pods = [p for p in final["pods"] if _labels_match(svc["selector"], p["labels"])]
    if not pods or not all(p["ready"] for p in pods) or len(pods) != mine["replicas"]:
        bad(
            f"{app.workload(live)}'s pods are not all ready: "
            f"{[(p['name'], p['ready'], p['state']) for p in pods]} of {mine['replicas']} replicas",
            pointing=True,
        )
    wrong = [p for p in final["probes"] if not p.ok or p.detail != mine["image"]]
    if wrong:
        bad(
            f"requests through the Service were not all answered by {mine['image']}: "
            f"{[(p.ok, p.detail) for p in wrong][:5]}",
            pointing=True,
        )

    # what is live is what the runs' outcomes say: the last run that released or rolled back
    record = rec.release_record(_view(svc)) or {}
    effective = [r for r in runs if r.outcome in ("released", "rolled back")]
    if effective:
        last = effective[-1]
        plan = last.plan
        released = last.outcome == "released"
        expect = (plan["new_color"], plan["image"]) if released else (plan["old_color"], plan["old_image"])
        gone = plan["old_color"] if released else plan["new_color"]
        # the release record is the last switch's: a run that rolled back before its switch left the
        # previous one in place; one that had switched records its rollback
        state = rec.COMPLETE if released else rec.ROLLED_BACK
        if (released or record.get("run_id") == last.run_id) and (
            record.get("run_id") != last.run_id or record.get("state") != state
        ):
            bad(
                f"run {last.run_id} {last.outcome}, but the Service's release record is "
                f"{ {k: record.get(k) for k in ('run_id', 'state')} }"
            )
    else:
        released, expect, gone = False, setup_expect, OTHER[setup_expect[0]]
    if (live, mine["image"]) != tuple(expect):
        bad(
            f"{live} ({mine['image']}) is live, but the runs' outcomes say {expect[0]} ({expect[1]}): "
            f"{[(r.run_id, r.outcome) for r in runs]}",
            pointing=True,
        )
    leftover = workloads.get(app.workload(gone)) if gone else None
    kept = (
        released and app.app.old_color_policy == "scale-to-zero" and leftover is not None and leftover["replicas"] == 0
    )
    if leftover is not None and not kept:
        bad(f"{app.workload(gone)} is left over: {leftover}")
    return out


def _check_runs(runs: list, svc: dict, bad) -> None:
    """No run is left failed; each that released or rolled back is in the Service's history and its note
    says so; a run refused at its plan (it never held the app) is not in the history."""
    from bluegreen.release import records as rec

    history = {h.get("run_id"): h for h in rec.history(_view(svc))}
    for r in runs:
        if r.outcome == "failed":
            bad(
                f"run {r.run_id} ended failed after what a person does next ({', '.join(r.followed_up) or '-'}): "
                f"{r.failure_summary}"
            )
        elif r.outcome in ("released", "rolled back"):
            entry = history.get(r.run_id)
            if entry is None or not str(entry.get("outcome", "")).startswith(r.outcome):
                bad(f"run {r.run_id} {r.outcome}, but the Service's history says {entry}")
            if f": {r.outcome}" not in r.note:
                bad(f"run {r.run_id} {r.outcome}, but its note says {r.note!r}")
        elif r.outcome == "refused" and r.plan is None and r.run_id in history:
            bad(f"run {r.run_id} was refused at its plan, but the Service's history records it: {history[r.run_id]}")


def _view(svc: dict):
    from bluegreen.release.model import ServiceView

    return ServiceView(selector=svc["selector"], annotations=svc["annotations"])
