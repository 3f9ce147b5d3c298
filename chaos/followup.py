"""What a person does next, after a run ended, as the README's "For release engineers" says:

  1. a run that rolled back: accepted as it is; or (the scenario's ``retry_after_rollback``, unless
     the reason says someone else changed the app: "start a new run") the person fixes what made it
     fail (a never-ready image: fixed behind the same tag) and clears ``deploy_new_color`` (with
     downstream) to release again: "Retry a failed step"
  2. a task failed without a rollback (retire_old_color, finish, the rollback itself, a plan that
     could not reach the API): clear the failed task (with downstream), up to twice
  3. still failed while the old color is still there: roll it back by hand: mark ``soak`` failed
     (and clear ``rollback``), "Roll back a release (until the old color is deleted)"
  4. a run refused because the Service points at a color that does not exist (a person's switch):
     the person does what the refusal says: points the Service at the color that is fully ready
  Any other refused run (the plan refused, e.g. the app is locked by another run) needs nothing.

Driven through the run's handle (direct: chaos.drivers.direct.DirectRun; airflow: the REST calls
of chaos.drivers.airflow.AirflowRun): ``outcome``, ``failed_tasks``, ``clear``, ``roll_back_by_hand``.
"""

from __future__ import annotations

START_A_NEW_RUN = ("start a new run", "someone else", "not this run")
NOTHING_SERVING = "which does not exist, so nothing is serving"


def follow_up(run, scenario, app, control) -> list[str]:
    done = run.followed_up
    if run.outcome == "rolled back" and scenario.retry_after_rollback:
        reason = run.failure_summary + " " + (run.note or "")
        if not any(words in reason for words in START_A_NEW_RUN):
            if "never-ready" in run.image:
                control.set_behaviour(run.image, "ready-after-0.5s")
                done.append("fixed the image behind the same tag")
            run.clear("deploy_new_color")
            done.append("cleared deploy_new_color")
    for _ in range(2):
        if run.outcome != "failed":
            break
        task = run.failed_tasks[0]
        run.clear(task)
        done.append(f"cleared {task}")
    if run.outcome == "refused" and NOTHING_SERVING in run.failure_summary:
        ready = [c for c in ("blue", "green") if app.read_workloads().get(app.workload(c), {}).get("complete")]
        if ready:
            app.person("switch", ready[0])
            done.append(f"pointed the Service at {ready[0]}, as the refusal said")
    if run.outcome == "failed" and run.plan and run.plan.get("old_color"):
        old = app.workload(run.plan["old_color"])
        if old in app.read_workloads():
            run.roll_back_by_hand("soak")
            done.append("marked soak failed to roll back")
    return done
