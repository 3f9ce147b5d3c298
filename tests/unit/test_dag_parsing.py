"""The DAG file builds every app's DAG for the dag-processor, and only its own for a task's process
(Airflow's parsing context names the DAG the task belongs to)."""

from __future__ import annotations

import pytest
from e2e.harness import write_app

from bluegreen.dags import load_release_dags

CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"


@pytest.fixture
def apps_dir(tmp_path):
    for name in ("alpha", "beta", "gamma"):
        write_app(tmp_path, name, "kubernetes")
    return tmp_path


def test_every_dag_without_a_parsing_context(apps_dir, monkeypatch):
    monkeypatch.delenv(CONTEXT, raising=False)
    assert sorted(load_release_dags(apps_dir)) == ["release_alpha", "release_beta", "release_gamma"]


def test_only_its_own_dag_for_a_task(apps_dir, monkeypatch):
    monkeypatch.setenv(CONTEXT, "release_beta")
    dags = load_release_dags(apps_dir)
    assert list(dags) == ["release_beta"]
    assert dags["release_beta"].task_dict.keys() >= {"plan", "switch_traffic", "soak", "rollback"}


def test_a_task_is_not_failed_by_another_apps_broken_config(apps_dir, monkeypatch):
    (apps_dir / "broken.yaml").write_text("app: broken\nplatform: nowhere\n")
    monkeypatch.setenv(CONTEXT, "release_alpha")
    assert list(load_release_dags(apps_dir)) == ["release_alpha"]
    monkeypatch.delenv(CONTEXT)
    assert "bluegreen_invalid_app_configs" in load_release_dags(apps_dir)  # the dag-processor still says so


def test_its_own_broken_config_is_still_reported_to_the_task(apps_dir, monkeypatch):
    (apps_dir / "beta.yaml").write_text((apps_dir / "beta.yaml").read_text() + "replicas: none\n")
    monkeypatch.setenv(CONTEXT, "release_beta")
    assert list(load_release_dags(apps_dir)) == ["bluegreen_invalid_app_configs"]


def test_two_configs_of_one_app_are_refused_in_a_task_too(apps_dir, monkeypatch):
    write_app(apps_dir / "again", "beta", "kubernetes")
    (apps_dir / "zz-beta.yaml").write_text(
        (apps_dir / "again" / "beta.yaml").read_text().replace("beta/", "again/beta/")
    )
    monkeypatch.setenv(CONTEXT, "release_beta")
    dags = load_release_dags(apps_dir)
    assert "bluegreen_invalid_app_configs" in dags


def test_a_context_of_another_dag_builds_them_all(apps_dir, monkeypatch):
    monkeypatch.setenv(CONTEXT, "some_other_dag")
    assert len(load_release_dags(apps_dir)) == 3


def test_the_run_params_live_on_the_dag_and_reach_every_task_at_run_time(apps_dir, monkeypatch):
    """Params given to DAG() are deep-copied into every task at each level of its constructor
    (27 copies per DAG: half the parse time of 100 apps); the DAG holds them once instead."""
    from airflow.sdk.definitions.param import process_params

    monkeypatch.delenv(CONTEXT, raising=False)
    dag = load_release_dags(apps_dir)["release_alpha"]
    assert {"image", "replicas", "soak", "approval", "reason", "restore_previous"} <= set(dag.params)
    assert {task.task_id: dict(task.params) for task in dag.tasks if task.params} == {}
    for task in dag.tasks:
        params = process_params(dag, task, {"image": "registry.local/alpha:2"}, suppress_exception=False)
        assert params["image"] == "registry.local/alpha:2"
        assert params["replicas"] == dag.params["replicas"]
