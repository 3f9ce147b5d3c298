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
        return f"{len(self.ok)} ok, {len(self.failures)} failed, versions {self.versions()}, " \
               f"counts {dict(Counter(i for _, i in self.ok))}, first failures {self.failures[:3]}"


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
