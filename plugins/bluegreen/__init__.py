"""bluegreen: blue-green releases on Kubernetes and BCS Mesos, one Airflow DAG run per release.

Layers, each importing only the ones below it (tests/unit/test_architecture.py checks it):
  dags.py      the DAG factory: app configs -> release DAGs
  operators, sensors, triggers, approval, timetable, run_notes
               thin Airflow task classes; they talk to ``release.steps.Release`` only
  platforms/   the Kubernetes and BCS Mesos adapters, implementing ``release.ports.Platform``
               (hooks/: the BCS API hook; Kubernetes uses the cncf-kubernetes provider's hooks)
  release/     what happens in which order, what counts as ready or healthy, how to roll back,
               and the Platform interface it needs (ports.py)
  apps/        app configs: pure data (no Airflow, nothing from above)
"""

__version__ = "0.1.0"
