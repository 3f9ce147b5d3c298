"""Running release DAGs with Airflow (``dag.test()``, triggers inline) against the sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "dags" / "apps"


def migrate_airflow_db() -> None:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def write_app(directory: Path, name: str, platform: str, **fields) -> Path:
    """An app config like the seed's test app, under a new name, with ``fields`` changed.

    The manifests are the seed's, copied beside the config so that a test may edit them."""
    seed = "test.yaml" if platform == "kubernetes" else "test-mesos.yaml"
    raw = yaml.safe_load((APPS / seed).read_text())
    manifests_dir = directory / name
    if manifests_dir.exists():
        shutil.rmtree(manifests_dir)
    shutil.copytree(APPS / "test" / platform, manifests_dir)
    raw["manifests"] = {k: f"{name}/{Path(v).name}" for k, v in raw["manifests"].items()}
    raw["app"] = name
    raw.update(fields)
    for key in [k for k, v in raw.items() if v is None]:
        del raw[key]
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_dag(dag, conf: dict | None = None):
    """dag.test() on a DAG built in the test: it must be in the DB (serialized) first."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(run_conf=conf or {})


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@dataclass
class TrafficLog:
    ok: list[tuple[float, str]] = field(default_factory=list)  # (time, image)
    failures: list[tuple[float, str]] = field(default_factory=list)

    def versions(self) -> list[str]:
        """The images served, in order, with repeats collapsed."""
        out: list[str] = []
        for _, image in self.ok:
            if not out or out[-1] != image:
                out.append(image)
        return out

    def summary(self) -> str:
        return (
            f"{len(self.ok)} ok, {len(self.failures)} failed, versions {self.versions()}, "
            f"counts {dict(Counter(i for _, i in self.ok))}, first failures {self.failures[:3]}"
        )


class TrafficLoop:
    """Sends requests through a service port (a new connection each, as new clients do)
    until stopped, recording which image answered."""

    def __init__(self, url: str, interval: float = 0.02, max_seconds: float = 180):
        self.url, self.interval, self.max_seconds = url, interval, max_seconds
        self.log = TrafficLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.log.ok and not self.log.failures and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.log

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            try:
                resp = requests.get(self.url, timeout=5, headers={"Connection": "close"})
                if resp.status_code == 200:
                    self.log.ok.append((time.time(), resp.json()["image"]))
                else:
                    self.log.failures.append((time.time(), f"HTTP {resp.status_code}"))
            except (requests.RequestException, ValueError) as e:
                self.log.failures.append((time.time(), type(e).__name__))
            self._stop.wait(self.interval)


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=str)


def clear_and_resume(dag, dag_run, task_ids: list[str], include_downstream: bool = True):
    """What a person does in the UI: clear tasks of a finished run (the real clear code path),
    then let the run go on.  The run is driven like dag.test() drives one: runnable task
    instances run in this process and their triggers run inline."""
    import time as _time

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    wanted = (
        set(dag.partial_subset(task_ids, include_downstream=include_downstream, include_upstream=False).task_ids)
        if include_downstream
        else set(task_ids)
    )
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id,
                TaskInstance.run_id == dag_run.run_id,
                TaskInstance.task_id.in_(wanted),
            )
        ).all()
        clear_task_instances(list(tis), session, dag_run_state=DagRunState.RUNNING)
    deadline = _time.monotonic() + 300
    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == dag_run.run_id))
        dr.dag = _scheduler_dag(dag)
        while dr.state in (DagRunState.RUNNING, DagRunState.QUEUED) and _time.monotonic() < deadline:
            if dr.state == DagRunState.QUEUED:
                dr.state = DagRunState.RUNNING
            session.expire_all()
            schedulable, _ = dr.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [ti for ti in dr.get_task_instances(session=session) if ti.state == TaskInstanceState.SCHEDULED]
            if not scheduled:
                _time.sleep(0.2)
            for ti in scheduled:
                try:
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                except Exception:  # the task's failure is in its state, as in dag.test()
                    pass
    with create_session() as session:
        # _run_task's sessions close this thread's scoped session, detaching ``dr``: read it anew
        return session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == dag_run.run_id))


def _scheduler_dag(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))


def xcom(dag_run, task_id: str, key: str = "return_value"):
    """A task's XCom value in a finished run (read from the metadata DB)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        )
        return XComModel.deserialize_value(row) if row is not None else None
