"""The benchmark's Airflow floor (benchmarks/floor_dags.py) runs as a release's graph does: every
step a task that succeeds, the rollback skipped.  ``make bench`` serves it; this keeps it from rotting."""

from __future__ import annotations

import runpy
from pathlib import Path

from .harness import run_dag, task_states

FLOOR_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "floor_dags.py"


def test_a_floor_dag_runs_every_step_and_skips_the_rollback(airflow_db, monkeypatch):
    monkeypatch.setenv("BENCH_FLOOR_DAGS", "1")
    monkeypatch.setenv("BENCH_FLOOR_READY", "0")
    monkeypatch.setenv("BENCH_FLOOR_SOAK", "0")
    dag = runpy.run_path(str(FLOOR_FILE))["bench_floor_0"]
    states = task_states(run_dag(dag))
    assert states.pop("rollback") == "skipped"
    assert set(states.values()) == {"success"} and len(states) == 8
