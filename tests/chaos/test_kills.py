"""The chaos airflow driver's kill of a running task: one that lands after the task had reported
success killed nothing that mattered, and passes on to the next task (chaos/faults.py)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chaos.faults import Happening, Injector, Timeline  # noqa: E402


def injector():
    scenario = SimpleNamespace(
        kill={"kind": "kill-worker", "task": "switch_traffic", "delay": 0.0, "mode": "worker"},
        pod_fault=None,
        api_faults=[],
    )
    inj = Injector(scenario, app=None, control=None, timeline=Timeline())
    inj._kill_armed = False  # as after the kill
    return inj


def run_whose_task_is(state: str, try_number: int = 1):
    answer = {"task_id": "switch_traffic", "try_number": try_number, "state": state}
    return SimpleNamespace(dag_id="d", run_id="r", rest=SimpleNamespace(task_instance=lambda *a: answer))


@pytest.mark.parametrize(
    "state, try_number, applied",
    [("success", 1, False), ("running", 1, True), ("up_for_retry", 1, True), ("success", 2, True)],
)
def test_a_kill_after_the_task_reported_success_is_not_applied_and_passes_on(state, try_number, applied):
    inj = injector()
    happening = inj.timeline.add(Happening("kill-worker", 0.0, 0.0, "SIGKILL switch_traffic try 1"))
    inj._check_kill(run_whose_task_is(state, try_number), {"task_id": "switch_traffic", "try_number": 1}, happening)
    assert happening.applied is applied
    assert inj._kill_armed is (not applied) and getattr(inj, "_kill_passed", False) is (not applied)


def test_a_target_that_ran_between_two_polls_passes_the_kill_on_to_the_next_running_task():
    """The driver reads the task instances every 0.5 s; a switch of 0.3 s can run between two reads
    and never be seen running.  The kill then goes to the next task that runs (here the soak)."""
    inj = injector()
    inj._kill_armed = True
    scheduled: list[float] = []
    inj._later = lambda seconds, fn: scheduled.append(seconds)
    tis = {
        "switch_traffic": {"state": "success", "try_number": 1, "pid": 41},
        "soak": {"state": "running", "try_number": 1, "pid": 42},
    }
    inj.on_tasks(SimpleNamespace(plan=None), tis)
    assert scheduled == [0.0] and inj._seen == {"soak": (1, "42")}


def test_the_target_seen_running_is_the_one_killed():
    inj = injector()
    inj._kill_armed = True
    scheduled: list[float] = []
    inj._later = lambda seconds, fn: scheduled.append(seconds)
    inj.on_tasks(SimpleNamespace(plan=None), {"switch_traffic": {"state": "running", "try_number": 1, "pid": 41}})
    inj.on_tasks(
        SimpleNamespace(plan=None),
        {"switch_traffic": {"state": "success", "try_number": 1, "pid": 41}, "soak": {"state": "running", "pid": 42}},
    )
    assert scheduled == [0.0] and list(inj._seen) == ["switch_traffic"]
