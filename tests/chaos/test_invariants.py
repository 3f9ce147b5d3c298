"""The chaos suite's own logic, without a sandbox: its scenarios come from their seeds, and each
invariant check finds what it must find (and excuses only what a person or a pod fault caused),
on audit events, pod samples and requests written here as the sandbox writes them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chaos import invariants as inv  # noqa: E402
from chaos.faults import Happening, Timeline, api_fault_specs  # noqa: E402
from chaos.observe import Request, Snapshot  # noqa: E402
from chaos.scenario import ALL_KINDS, generate  # noqa: E402

BLUE, GREEN = {"app": "test-blue"}, {"app": "test-green"}
BG, KUBECTL = "bluegreen/0.1.0", "kubectl/v1.37.1 (linux/amd64)"
V1, V2 = "registry.local/c1/test:v1", "registry.local/c1/test:v2"


class App:
    """The seed's Kubernetes app, as the checks see a chaos run's app."""

    def __init__(self, old_color: str = "delete"):
        from bluegreen.apps.config import load_app

        self.app = load_app(ROOT / "dags" / "apps" / "test.yaml")
        if old_color != "delete":
            self.app = type(self.app).from_json({**self.app.to_json(), "old_color": old_color})
        self.service, self.api, self.namespace = "test", "kube", "chaos-1"

    def selector_for(self, color):
        return self.app.selector_for(color)

    def color_of(self, selector):
        return self.app.color_of(selector or {})

    def workload(self, color):
        return self.app.deployment_name(color)


def switch(seq, t, old, new, actor=BG, rolled_out=True, ready=3):
    name = {"test-blue": "test-blue", "test-green": "test-green"}[new["app"]] if new else None
    workloads = (
        [{"kind": "Deployment", "name": name, "replicas": 3, "rolled_out": rolled_out, "pods": 3, "ready": ready}]
        if new
        else []
    )
    return {
        "seq": seq,
        "time": t,
        "kind": "service_selector",
        "actor": actor,
        "api": "kube",
        "namespace": "chaos-1",
        "service": "test",
        "verb": "update",
        "old_selector": old,
        "new_selector": new,
        "matched": {"pods": 3 if new else 0, "ready": ready if new else 0, "workloads": workloads},
    }


def delete(seq, t, name, selects=False, routes=False, changed_at=0.0, selector=None, actor=BG):
    entry = {
        "service": "test",
        "selector": selector,
        "routed_selector": selector,
        "selects": selects,
        "routes": routes,
        "selector_changed_at": changed_at,
    }
    return {
        "seq": seq,
        "time": t,
        "kind": "workload_delete",
        "actor": actor,
        "api": "kube",
        "namespace": "chaos-1",
        "name": name,
        "workload_kind": "Deployment",
        "replicas": 3,
        "selected_by": [entry] if (selects or routes) else [],
    }


def pod(name, labels, ready=True, image=V2):
    return {"name": name, "image": image, "labels": labels, "ready": ready, "state": "running"}


# -- scenarios --------------------------------------------------------------------------------------
def test_a_seed_is_its_scenario():
    assert generate(123).to_json() == generate(123).to_json()
    assert generate(123).to_json() != generate(124).to_json()


def test_every_tenth_seed_runs_through_airflow_and_both_platforms_are_drawn():
    scenarios = [generate(s) for s in range(200, 400)]
    assert sum(s.driver == "airflow" for s in scenarios) == 20
    platforms = [s.platform for s in scenarios]
    assert 70 <= platforms.count("kubernetes") <= 130, "about half each"
    kinds = {k for s in scenarios for k in s.kinds}
    assert kinds >= set(ALL_KINDS) - {"none"}, set(ALL_KINDS) - kinds
    assert all(s.kill is None or s.kill["kind"] != "kill-scheduler" or s.driver == "airflow" for s in scenarios)
    assert all(not {"watch-cut", "watch-gone"} & set(s.kinds) for s in scenarios if s.platform == "bcs-mesos")


def test_api_faults_are_scoped_to_the_runs_namespace():
    class Bcs:
        api, namespace = "bcs", "chaos-7"

    specs = api_fault_specs(Bcs(), {"kind": "api-5xx", "spec": {"status": 503, "times": 5, "probability": 0.5}})
    assert [(s["path"], s.get("request_body"), s["times"]) for s in specs] == [
        ("/chaos\\-7(/|$)", None, 3),
        ("^/bcsapi/v4/storage/query/", '"namespace": "chaos\\-7"', 2),
    ]


# -- switched-unready -------------------------------------------------------------------------------
def test_a_switch_by_bluegreen_to_a_color_not_rolled_out_is_a_violation():
    app = App()
    events = [switch(1, 10.0, BLUE, GREEN, rolled_out=False, ready=1)]
    assert [v.invariant for v in inv.check_switches(app, events, Timeline())] == ["switched-unready"]
    # the same switch by a person is the person's
    events = [switch(1, 10.0, BLUE, GREEN, actor=KUBECTL, rolled_out=False, ready=0)]
    assert inv.check_switches(app, events, Timeline()) == []
    # and a fully ready one is fine
    assert inv.check_switches(App(), [switch(1, 10.0, BLUE, GREEN)], Timeline()) == []


def test_a_switch_right_after_a_persons_scale_of_that_color_is_excused():
    timeline = Timeline()
    timeline.add(Happening("person-scale", 9.0, 9.2, "scale green to 4", color="green"))
    events = [switch(1, 10.0, BLUE, GREEN, rolled_out=False)]
    assert inv.check_switches(App(), events, timeline) == []


# -- deleted-live -----------------------------------------------------------------------------------
def test_deleting_the_color_the_service_selected_for_long_is_a_violation():
    events = [
        switch(1, 10.0, BLUE, GREEN),
        delete(2, 20.0, "test-green", selects=True, changed_at=10.0, selector=GREEN),
    ]
    found = inv.check_deletes(App(), events, [])
    assert [v.invariant for v in found] == ["deleted-live"] and "for 10.0s" in found[0].detail


def test_a_persons_last_second_switch_must_be_put_back():
    race = [
        switch(1, 10.0, GREEN, BLUE, actor=KUBECTL),
        delete(2, 10.4, "test-blue", selects=True, changed_at=10.0, selector=BLUE),
    ]
    assert [v.invariant for v in inv.check_deletes(App(), race, [])] == ["deleted-live"]
    put_back = race + [switch(3, 11.0, BLUE, GREEN)]
    assert inv.check_deletes(App(), put_back, []) == []
    assert inv.check_deletes(App(), race, ["... nothing may be serving.  By hand: kubectl ..."]) == []


def test_removing_a_color_before_bluegreens_own_switch_away_reached_the_proxies_is_a_violation():
    own = [switch(1, 10.0, GREEN, BLUE), delete(2, 10.05, "test-green", routes=True, changed_at=10.0, selector=BLUE)]
    assert [v.invariant for v in inv.check_deletes(App(), own, [])] == ["deleted-live"]
    persons = [
        switch(1, 10.0, GREEN, BLUE, actor=KUBECTL),
        delete(2, 10.05, "test-green", routes=True, changed_at=10.0, selector=BLUE),
    ]
    assert inv.check_deletes(App(), persons, []) == []


def test_a_persons_delete_is_not_bluegreens():
    events = [
        switch(1, 10.0, BLUE, GREEN),
        delete(2, 20.0, "test-green", selects=True, changed_at=10.0, selector=GREEN, actor=KUBECTL),
    ]
    assert inv.check_deletes(App(), events, []) == []


# -- no-ready-member, client-failure ----------------------------------------------------------------
def test_no_ready_member_of_the_selected_color_is_a_violation_outside_a_window():
    app = App()
    events = [switch(1, 1.0, None, BLUE)]
    samples = [
        Snapshot(t, t + 0.01, [pod("b1", BLUE, ready=t < 5, image=V1), pod("g1", GREEN)]) for t in (2.0, 4.0, 6.0, 8.0)
    ]
    found = inv.check_ready_member(app, events, samples, [])
    assert [v.invariant for v in found] == ["no-ready-member"] and "from 6.000 to 8.010" in found[0].detail
    assert inv.check_ready_member(app, events, samples, [(5.5, 9.0, "pod-kill")]) == []
    # a sample taken while the selector changed says nothing
    moving = [switch(1, 1.0, None, BLUE), switch(2, 6.005, BLUE, GREEN)]
    assert inv.check_ready_member(app, moving, samples[2:3], []) == []


def test_failed_requests_are_violations_unless_a_person_or_a_pod_fault_caused_them():
    requests_ = [
        Request(1.0, 1.01, True, V1),
        Request(2.0, 2.1, False, "ConnectionResetError"),
        Request(9.0, 9.2, False, "HTTP 503"),
    ]
    found, excused = inv.check_traffic(requests_, [(1.5, 3.0, "person-switch")])
    assert excused == 1 and len(found) == 1 and "1 of 3 requests failed" in found[0].detail


def test_a_persons_harmful_switch_is_excused_until_bluegreen_switched_again():
    app = App()
    timeline = Timeline()
    timeline.add(Happening("person-switch", 5.0, 5.2, "switch green", color="green"))
    events = [
        switch(1, 1.0, None, BLUE),
        switch(2, 5.1, BLUE, GREEN, actor=KUBECTL, rolled_out=False, ready=0),
        switch(3, 12.0, GREEN, BLUE),
    ]
    samples = [Snapshot(4.0, 4.01, [pod("b1", BLUE, image=V1), pod("g1", GREEN, ready=False)])]
    windows = inv.excuse_windows(app, timeline, events, samples, end=30.0)
    assert windows == [(4.5, 15.0, "person-switch")]
    # the same switch to a color that had a ready member harms nothing: a short window
    samples = [Snapshot(4.0, 4.01, [pod("b1", BLUE, image=V1), pod("g1", GREEN, ready=True)])]
    assert inv.excuse_windows(app, timeline, events, samples, end=30.0) == [(4.5, 11.2, "person-switch")]


# -- final-state ------------------------------------------------------------------------------------
class Run:
    def __init__(self, run_id, outcome, plan, note="", followed_up=(), failure=""):
        self.run_id, self.outcome, self.plan, self.note = run_id, outcome, plan, note
        self.followed_up, self.failure_summary = list(followed_up), failure


PLAN = {"new_color": "green", "old_color": "blue", "image": V2, "old_image": V1}


def released_service(lock=None, history_outcome="released", state="complete"):
    import json

    annotations = {
        "bluegreen.io/release": json.dumps({"run_id": "r2", "state": state}),
        "bluegreen.io/history": json.dumps([{"run_id": "r2", "outcome": history_outcome}]),
    }
    if lock:
        annotations["bluegreen.io/lock"] = lock
    return {"selector": GREEN, "annotations": annotations}


def final(service, workloads=None, pods=None, probes=None):
    workloads = workloads if workloads is not None else {"test-green": {"image": V2, "replicas": 2, "complete": True}}
    pods = pods if pods is not None else [pod("g1", GREEN), pod("g2", GREEN)]
    probes = probes if probes is not None else [Request(1, 1, True, V2)] * 6
    return {"service": service, "workloads": workloads, "pods": pods, "probes": probes}


def test_a_clean_release_passes_the_final_checks():
    runs = [Run("r2", "released", PLAN, note="c1: blue (v1) -> green (v2): released")]
    assert inv.check_final(App(), final(released_service()), runs, ("blue", V1)) == []


@pytest.mark.parametrize(
    "broken, expected",
    [
        (dict(service=released_service(lock='{"run_id": "r2"}')), "the release lock is left"),
        (
            dict(
                workloads={
                    "test-green": {"image": V2, "replicas": 2, "complete": True},
                    "test-blue": {"image": V1, "replicas": 3, "complete": True},
                }
            ),
            "test-blue is left over",
        ),
        (dict(pods=[pod("g1", GREEN), pod("g2", GREEN, ready=False)]), "pods are not all ready"),
        (dict(probes=[Request(1, 1, False, "ConnectionResetError")] * 6), "not all answered"),
        (dict(service=released_service(history_outcome="rolled back: x", state="rolled-back")), "history says"),
    ],
)
def test_the_final_checks_find_what_is_wrong(broken, expected):
    runs = [Run("r2", "released", PLAN, note="c1: blue (v1) -> green (v2): released")]
    args = {"service": released_service(), **broken}
    found = inv.check_final(App(), final(**args), runs, ("blue", V1))
    assert any(expected in v.detail for v in found), found


def test_a_run_left_failed_or_an_outcome_that_disagrees_with_what_is_live_is_a_violation():
    failed = [Run("r2", "failed", PLAN, followed_up=["cleared retire_old_color"], failure="retire_old_color: ...")]
    assert any(
        "ended failed" in v.detail for v in inv.check_final(App(), final(released_service()), failed, ("blue", V1))
    )
    rolled_back = [Run("r2", "rolled back", PLAN, note="...: rolled back (soak: x)")]
    found = inv.check_final(App(), final(released_service()), rolled_back, ("blue", V1))
    assert any("the runs' outcomes say blue" in v.detail for v in found), found


def test_what_a_persons_last_switch_left_is_theirs_but_a_lock_left_is_not():
    app = App()
    events = [switch(1, 10.0, BLUE, GREEN), switch(2, 30.0, GREEN, BLUE), switch(3, 31.0, BLUE, GREEN, actor=KUBECTL)]
    persons = inv.persons_last_switch(app, events)
    assert persons is not None and persons["seq"] == 3
    assert inv.persons_last_switch(app, events[:2]) is None
    runs = [Run("r2", "rolled back", PLAN, note="...: rolled back (soak: x)")]
    gone = final(released_service(history_outcome="rolled back: soak", state="rolled-back"), workloads={}, pods=[])
    assert [v.detail for v in inv.check_final(app, gone, runs, ("blue", V1))] == [
        "the Service points at green, whose workload does not exist"
    ]
    word = inv.persons_final_word(app, events)
    assert word.startswith("the Service's last selector change was a person's")
    assert inv.check_final(app, gone, runs, ("blue", V1), word) == []
    locked = final(
        released_service(lock='{"run_id": "r2"}', history_outcome="rolled back: soak", state="rolled-back"),
        workloads={},
        pods=[],
    )
    assert [v.detail[:26] for v in inv.check_final(app, locked, runs, ("blue", V1), word)] == [
        "the release lock is left: "
    ]
    # a person who deleted the color the Service points at (after bluegreen switched to it) did it too
    deleted = events[:2] + [delete(4, 40.0, "test-blue", selects=True, changed_at=30.0, selector=BLUE, actor=KUBECTL)]
    assert "deleted test-blue" in inv.persons_final_word(app, deleted)
    assert inv.persons_final_word(app, events[:2]) is None


def test_a_run_refused_at_its_plan_must_have_changed_nothing():
    refused = Run("r3", "refused", None)
    runs = [Run("r2", "released", PLAN, note="...: released"), refused]
    assert inv.check_final(App(), final(released_service()), runs, ("blue", V1)) == []
    import json

    svc = released_service()
    svc["annotations"]["bluegreen.io/history"] = json.dumps(
        [{"run_id": "r2", "outcome": "released"}, {"run_id": "r3", "outcome": "released"}]
    )
    found = inv.check_final(App(), final(svc), runs, ("blue", V1))
    assert any("refused at its plan" in v.detail for v in found), found


def test_api_faults_may_target_the_service_or_the_workloads():
    class Kube:
        api, namespace = "kube", "chaos-8"

    class Bcs:
        api, namespace = "bcs", "chaos-8"

    fault = {"kind": "api-delay", "spec": {"delay": 1.0, "times": 3, "probability": 0.5, "target": "service"}}
    assert [s["path"] for s in api_fault_specs(Kube(), fault)] == ["/namespaces/chaos\\-8/services/"]
    assert [s["path"] for s in api_fault_specs(Bcs(), fault)] == ["/chaos\\-8/services?(/|$)"]
    assert all("target" not in s for s in api_fault_specs(Bcs(), fault))


def test_a_persons_delete_of_the_color_bluegreen_switched_to_within_a_second_is_a_race():
    app = App()
    timeline = Timeline()
    timeline.add(Happening("person-delete-green", 5.0, 5.1, "delete green", color="green"))
    raced = [
        switch(1, 1.0, None, BLUE),
        switch(2, 5.6, BLUE, GREEN, rolled_out=False, ready=0),
        switch(3, 21.0, GREEN, BLUE),
    ]
    assert inv.excuse_windows(app, timeline, raced, [], end=40.0) == [(4.5, 24.0, "person-delete-green")]
    assert inv.check_switches(app, raced, timeline) == []
    # two seconds later it is no race: bluegreen's check was stale, the switch is bluegreen's
    late = [switch(1, 1.0, None, BLUE), switch(2, 7.2, BLUE, GREEN, rolled_out=False, ready=0)]
    assert inv.excuse_windows(app, timeline, late, [], end=40.0) == [(4.5, 11.1, "person-delete-green")]
    assert [v.invariant for v in inv.check_switches(app, late, timeline)] == ["switched-unready"]


def test_a_persons_switch_to_a_color_being_deleted_is_theirs_until_bluegreen_switches_again():
    app = App()
    timeline = Timeline()
    timeline.add(Happening("person-switch", 13.3, 13.4, "switch blue", color="blue"))
    events = [
        switch(1, 1.0, None, BLUE),
        switch(2, 10.0, BLUE, GREEN),
        delete(3, 13.29, "test-blue"),
        switch(4, 13.35, GREEN, BLUE, actor=KUBECTL, rolled_out=False, ready=0),
    ]
    samples = [Snapshot(13.0, 13.01, [pod("b1", BLUE, image=V1), pod("g1", GREEN)])]  # blue still listed ready
    assert inv.excuse_windows(app, timeline, events, samples, end=30.0) == [(12.8, 30.0, "person-switch")]
