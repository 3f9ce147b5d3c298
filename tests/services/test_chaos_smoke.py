"""The chaos suite's smoke runs through the real Airflow services (this session's stack), with
real process kills: the process running a task is killed with SIGKILL (Airflow retries the task),
and the triggerer is killed during the soak and started again (the new triggerer takes its
trigger over).  Both runs side by side, under a client loop; 0 invariant violations (chaos/README.md)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chaos.report import render  # noqa: E402
from chaos.scenario import Scenario  # noqa: E402
from chaos.session import Session  # noqa: E402

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("airflow-services")]

SCENARIOS = [
    # the process running switch_traffic, killed a moment after it started
    Scenario(
        seed=990010,
        driver="airflow",
        platform="kubernetes",
        replicas=2,
        soak=8.0,
        kill={"kind": "kill-worker", "task": "switch_traffic", "delay": 0.3, "mode": "task"},
        api_faults=[{"kind": "api-5xx", "spec": {"status": 503, "probability": 0.2, "times": 4, "method": "GET"}}],
    ),
    # the triggerer, killed two seconds into the deferred soak
    Scenario(
        seed=990020,
        driver="airflow",
        platform="bcs-mesos",
        replicas=2,
        soak=10.0,
        kill={"kind": "kill-triggerer", "task": "soak", "delay": 2.0},
    ),
]


def test_airflow_runs_keep_every_invariant_when_their_processes_are_killed(airflow_services, sandbox, tmp_path):
    with Session(tmp_path, endpoints=sandbox, airflow_services=airflow_services, echo=print) as session:
        results = session.run(0, 0, airflow_lanes=len(SCENARIOS), scenarios=SCENARIOS)
    print(render(results, SCENARIOS[0].seed))
    errors = [(r.scenario.seed, r.error) for r in results if r.error]
    assert not errors, errors
    violations = [(r.scenario.seed, [str(v) for v in r.violations]) for r in results if r.violations]
    assert not violations, violations
    assert [r.outcome for r in results] == ["released", "released"], [(r.outcome, r.reason) for r in results]
    kills = {h.split(" at ")[0] for r in results for h in r.happenings if "not applied" not in h}
    assert {"kill-worker", "kill-triggerer"} <= kills, [r.happenings for r in results]
    # the killed task was retried, and the killed triggerer's soak went on in the new one.  The kill
    # aims at switch_traffic; one that ended before the kill's moment (it takes well under a second)
    # passes it on to the next task that runs (chaos/faults.py), so the happening names the victim;
    # so does a kill that landed after the task had reported success (on the timeline as not applied).
    worker = results[0].tasks[f"c{SCENARIOS[0].seed}-v2"]
    killed = [
        m for h in results[0].happenings if "not applied" not in h and (m := re.search(r"SIGKILL (\w+) try (\d+)", h))
    ]
    assert killed, results[0].happenings
    victim, killed_try = killed[0].group(1), int(killed[0].group(2))
    assert next(t for t in worker if t["task"] == victim)["try"] > killed_try, (victim, worker)
    assert airflow_services.dead() == {}, "the killed components run again"
