"""Celery settings for bluegreen's workers: Airflow's own, plus the modules every release task
imports, imported once by ``airflow celery worker`` before it forks its pool (Celery's
``imports``), so that each task process starts with them loaded.  Used as
``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=bluegreen.celery_config.CELERY_CONFIG``
(docker-compose.yaml, the Helm values)."""

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from .provider import TASK_PRELOAD

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": TASK_PRELOAD}
