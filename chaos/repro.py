"""``python -m chaos.repro <defect> [--platform kubernetes|bcs-mesos]``: the defects the chaos
suite found in bluegreen (chaos/README.md, "Found"), each reproduced on purpose instead of by
chance: the same release steps and triggers as the direct driver, with the one fault that
triggers it placed on the one call that matters.  Prints what the release did, the audit log
(who changed the Service's selector and removed which workload, when) and the client loop's
failures.

  drain         the rollback's switch back lands 3 s late (a slow API): its drain delay is counted
                from a timestamp taken before the write, so the new color is deleted while the
                proxies still route to it
  stale-switch  switch_traffic re-checks readiness, then reads the old color (a slow read) before
                it writes the Service: a person deletes the new color meanwhile, the Service is
                switched to it anyway and points at nothing for the whole switch_timeout
  bcs-claim     (BCS) a Service write whose claim was made but whose update kept failing (503s past
                the retry budget) leaves its claim: every later write of the Service is refused as
                "kept changing ... retry" until the claim is stale (api_retry_budget + 60 s)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import env

FIELDS = dict(
    soak="3s",
    readiness_timeout="20s",
    check_interval="0.5s",
    switch_timeout="15s",
    delete_timeout="30s",
    drain_delay="2s",
    api_retry_budget="4s",
    defer_after="0s",
    retries=3,
    rollback_retries=8,
)


class Hooks:
    def __init__(self, on_phase=None, on_process=None):
        self._phase, self._process = on_phase, on_process

    def on_phase(self, run, phase):
        if self._phase:
            self._phase(run, phase)

    def on_process(self, run, kind, task, proc):
        if self._process:
            self._process(run, kind, task, proc)


def service_write(app) -> str:
    ns = app.namespace
    return f"/namespaces/{ns}/services/test$" if app.api == "kube" else f"/namespaces/{ns}/services$"


def drain(app, control):
    control.set_propagation_delay(1.0)

    def on_phase(run, phase):
        if phase == "soak":

            def later():
                time.sleep(1.0)
                control.fault(app.api, "PUT", service_write(app), delay=3.0, times=1)
                pod = next(p["name"] for p in control.pods() if p["image"] == app.images["v2"] and p["ready"])
                control.kill_pod(pod, down=30)  # the soak fails: the rollback switches back

            threading.Thread(target=later, daemon=True).start()

    return Hooks(on_phase=on_phase)


def stale_switch(app, control):
    def on_phase(run, phase):
        if phase == "switch":
            old = (
                f"/namespaces/{app.namespace}/deployments/test-blue$"
                if app.api == "kube"
                else f"/definition/deployment/{app.namespace}/test-blue$"
            )
            control.fault(app.api, "GET", old, delay=3.0, times=1)

            def person():
                time.sleep(1.5)
                app.person("delete", "green")

            threading.Thread(target=person, daemon=True).start()

    return Hooks(on_phase=on_phase)


def bcs_claim(app, control):
    state = {}

    def on_phase(run, phase):
        if phase == "soak" and "fault" not in state:
            # the Service's updates fail with 503 from now on (mark_soaked's, after the soak)
            state["fault"] = control.fault("bcs", "PUT", service_write(app), status=503, times=200)["id"]

    def on_process(run, kind, task, proc):
        if "fault" in state and "cleared" not in state and run.tries and run.tries[-1].attempt >= 1:
            control.remove_fault(state["fault"])  # the API is fine again for the task's retry
            state["cleared"] = time.time()
            print(f"  the 503s stopped at {state['cleared'] % 1000:.2f} (the soak's retry starts)")

    return Hooks(on_phase=on_phase, on_process=on_process)


DEFECTS = {"drain": drain, "stale-switch": stale_switch, "bcs-claim": bcs_claim}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m chaos.repro", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("defect", choices=sorted(DEFECTS))
    p.add_argument("--platform", choices=["kubernetes", "bcs-mesos"], default=None)
    p.add_argument("--slot", type=int, default=6)
    args = p.parse_args(argv)
    platform = args.platform or ("bcs-mesos" if args.defect == "bcs-claim" else "kubernetes")
    env.importable()
    conftest = env.tests_conftest()
    work = Path(tempfile.mkdtemp(prefix=f"bluegreen-repro-{args.defect}-"))
    sandbox = conftest.SandboxProcess(work / "sandbox" / "state", args.slot)
    endpoints = sandbox.start()
    env.use_sandbox(endpoints)
    from .apps import ChaosApp
    from .drivers.direct import DirectRun
    from .observe import TrafficLoop

    control = conftest.Control(endpoints)
    try:
        app = ChaosApp(
            seed=999000 + list(DEFECTS).index(args.defect),
            platform=platform,
            endpoints=endpoints,
            directory=work / "apps",
            fields=FIELDS,
        )
        app.create_namespace()
        log = str(work / "release.log")
        if DirectRun(app, "v1", app.images["v1"], 2, 0, log).execute().outcome != "released":
            raise RuntimeError("the first release failed")
        loop = TrafficLoop(app.traffic_url(), 0.05).start()
        seq = control.audit()[-1]["seq"]
        run = DirectRun(app, "v2", app.images["v2"], 2, 3, log, hooks=DEFECTS[args.defect](app, control))
        started = time.time()
        run.execute()
        time.sleep(2)
        loop.stop()
        control.clear_faults()
        print(
            f"{args.defect} on {platform}: the release {run.outcome} in {time.time() - started:.0f}s "
            f"({run.failure_summary or 'no task failed'})"
        )
        for t in run.tries:
            print(f"  {t.started % 1000:8.2f} {t.task:<17} try {t.attempt + 1}: {t.result[:150]}")
        print("audit log (time, actor, change):")
        for e in control.audit(seq):
            if e.get("namespace") != app.namespace:
                continue
            if e["kind"] == "service_selector":
                print(
                    f"  {e['time'] % 1000:8.2f} {e['actor'][:16]:<16} selector {e['old_selector']} -> "
                    f"{e['new_selector']}; matched {e['matched']}"
                )
            else:
                selected_by = [
                    (s['service'], 'selects' if s['selects'] else '', 'routes' if s['routes'] else '')
                    for s in e['selected_by']
                ]
                print(
                    f"  {e['time'] % 1000:8.2f} {e['actor'][:16]:<16} {e['kind']} {e['name']};"
                    f" selected_by {selected_by}"
                )
        failed = [r for r in loop.requests if not r.ok]
        print(
            f"client loop: {len(loop.requests)} requests, {len(failed)} failed"
            + (f", from {failed[0].t0 % 1000:.2f} to {failed[-1].t1 % 1000:.2f} ({failed[0].detail})" if failed else "")
        )
        print(f"logs: {log}")
    finally:
        control.set_propagation_delay(0.3)
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
