"""The release benchmark's Airflow floor: a release's graph with tasks that do nothing but wait.

``make bench`` serves this file beside dags/release_apps.py (in a DAG folder of its own, never in
dags/).  Each DAG has a release's tasks, dependencies and trigger rules; ``wait_until_ready``
sleeps as long as the platform takes to make pods ready, ``soak`` as long as the soak, every other
task returns at once.  N of them triggered at once measure what Airflow itself costs for a release
of this shape on this machine (its scheduler hops, task processes, executor): no release can
cost less while every step stays a task.

Environment (set by benchmarks/__main__.py for every service): BENCH_FLOOR_DAGS (how many DAGs,
``bench_floor_0`` ...), BENCH_FLOOR_READY and BENCH_FLOOR_SOAK (s).
"""

from __future__ import annotations

import datetime as dt
import os
import time

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TriggerRule, chain

COUNT = int(os.environ.get("BENCH_FLOOR_DAGS") or 0)
WAITS = {
    "wait_until_ready": float(os.environ.get("BENCH_FLOOR_READY") or 1.0),
    "soak": float(os.environ.get("BENCH_FLOOR_SOAK") or 10.0),
}
# a release's steps in order (bluegreen.dags.release_dag), and those whose failure rolls back
STEPS = ("plan", "deploy_new_color", "wait_until_ready", "approve", "switch_traffic", "soak", "retire_old_color")
STEPS += ("finish",)
GUARDED = ("deploy_new_color", "wait_until_ready", "approve", "switch_traffic", "soak")


def wait(seconds: float) -> None:
    time.sleep(seconds)


def floor_dag(index: int) -> DAG:
    with DAG(
        dag_id=f"bench_floor_{index}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["bench"],
    ) as dag:
        steps = {
            name: PythonOperator(task_id=name, python_callable=wait, op_args=[WAITS.get(name, 0.0)]) for name in STEPS
        }
        rollback = PythonOperator(
            task_id="rollback", python_callable=wait, op_args=[0.0], trigger_rule=TriggerRule.ONE_FAILED
        )
        chain(*steps.values())
        for name in GUARDED:
            steps[name] >> rollback
    return dag


for _index in range(COUNT):
    globals()[f"bench_floor_{_index}"] = floor_dag(_index)
