"""The benchmark's Airflow floor (benchmarks/floor_dags.py) has a release's graph: the same tasks,
dependencies and trigger rules as a release DAG, so that it measures what Airflow costs for that
shape and stays honest when the release's graph changes."""

from __future__ import annotations

import runpy
from pathlib import Path

from e2e.harness import write_app

from bluegreen.dags import load_release_dags

FLOOR_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "floor_dags.py"


def shape(dag) -> dict[str, tuple[frozenset[str], str]]:
    return {t.task_id: (frozenset(t.upstream_task_ids), str(t.trigger_rule)) for t in dag.tasks}


def test_the_floor_dag_has_a_release_dags_graph(tmp_path, monkeypatch):
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    write_app(tmp_path, "alpha", "kubernetes")
    release = load_release_dags(tmp_path)["release_alpha"]
    monkeypatch.setenv("BENCH_FLOOR_DAGS", "2")
    monkeypatch.setenv("BENCH_FLOOR_SOAK", "7")
    floor = runpy.run_path(str(FLOOR_FILE))
    assert shape(floor["bench_floor_1"]) == shape(release)
    waits = {t.task_id: t.op_args for t in floor["bench_floor_0"].tasks}
    assert waits["soak"] == [7.0] and waits["wait_until_ready"] == [1.0] and waits["switch_traffic"] == [0.0]
