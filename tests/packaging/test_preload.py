"""What every release task imports is imported once per worker, before the task processes are
forked: the LocalExecutor through the scheduler's forkserver (make demo, the services tests), the
Celery workers through Celery's ``imports`` (docker-compose.yaml, the Helm values).  ``make bench``
measures what it saves; this checks that each place says the same, and that every module named
exists (the forkserver silently skips one that does not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bluegreen.provider import FORKSERVER_PRELOAD, TASK_PRELOAD, forkserver_settings

ROOT = Path(__file__).resolve().parents[2]
CELERY_OPTION = "bluegreen.celery_config.CELERY_CONFIG"


def test_every_preloaded_module_imports_in_a_fresh_interpreter():
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *FORKSERVER_PRELOAD], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_celery_workers_import_the_same_modules_before_forking_their_pool():
    from celery import Celery

    from bluegreen.celery_config import CELERY_CONFIG

    app = Celery("bluegreen-check", config_source=CELERY_CONFIG)
    # what the worker's loader imports in WorkController.__init__ (loader.init_worker)
    assert tuple(app.loader.default_modules) == TASK_PRELOAD
    assert set(TASK_PRELOAD) < set(FORKSERVER_PRELOAD)  # the forkserver's adds the LocalExecutor's own
    assert CELERY_CONFIG["broker_url"]  # Airflow's own settings are kept


def test_compose_and_helm_configure_the_celery_workers_with_it():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    environment = compose["x-airflow-common"]["environment"]
    assert environment["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_OPTION
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_OPTION


def test_the_local_executor_settings_name_the_forkserver_and_every_module():
    settings = forkserver_settings()
    assert settings["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert settings["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"].split(",") == list(FORKSERVER_PRELOAD)


def test_compose_helm_and_the_demo_ship_the_schedulers_idle_sleep():
    """Each release task waits for the scheduler's next loop: every install runs the idle sleep that
    make bench measured (bluegreen.provider.SCHEDULER_IDLE_SLEEP), not Airflow's 1 s."""
    from bluegreen.provider import SCHEDULER_IDLE_SLEEP, scheduler_settings

    name = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
    assert scheduler_settings() == {name: SCHEDULER_IDLE_SLEEP} and float(SCHEDULER_IDLE_SLEEP) < 1.0
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    assert compose["x-airflow-common"]["environment"][name] == SCHEDULER_IDLE_SLEEP
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    assert {e["name"]: e["value"] for e in values["env"]}[name] == SCHEDULER_IDLE_SLEEP
    assert "**scheduler_settings()" in (ROOT / "demo" / "__main__.py").read_text()
