"""bluegreen: blue-green releases on Kubernetes and BCS Mesos, one Airflow DAG run per release.

Layout (one release model, one adapter per platform):
  release/     what happens in which order, what counts as ready or healthy, how to roll back
  platforms/   the Kubernetes and BCS Mesos adapters behind one interface
  hooks/       the BCS API hook (Kubernetes uses the cncf-kubernetes provider's hooks)
  operators, sensors, triggers   thin Airflow task classes over the release model
  apps/        app config files -> release DAGs
"""

__version__ = "0.1.0"
