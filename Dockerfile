# The production image: Airflow 3.3.2 with bluegreen installed as a provider (its wheel only) and
# the release DAG file; docker-compose.yaml and deploy/helm/values.yaml run it.  No sandbox, no
# test tools, nothing in a plugins folder: bluegreen's timetable comes from its airflow.plugins
# entry point.  tests/packaging/test_wheel.py runs this file's two RUN lines (the wheel build and
# the install) into a fresh venv, so what the image installs is what that test releases with.

# Stage 1: the wheel, built from the package's own files only.
FROM apache/airflow:3.3.2-python3.11 AS wheel
COPY --chown=airflow:root pyproject.toml README.md /tmp/bluegreen/
COPY --chown=airflow:root plugins/bluegreen /tmp/bluegreen/plugins/bluegreen
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels /tmp/bluegreen

# Stage 2: Airflow pinned to the image's version (so pip never moves it) plus bluegreen with the
# Celery extra (the chart and docker-compose run CeleryExecutor), every version from constraints.txt,
# the versions the tests run on.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root constraints.txt /opt/bluegreen/constraints.txt
COPY --chown=airflow:root --from=wheel /tmp/wheels/ /opt/bluegreen/wheels/
RUN pip install --no-cache-dir -c /opt/bluegreen/constraints.txt "apache-airflow==3.3.2" "bluegreen[celery] @ file://$(echo /opt/bluegreen/wheels/bluegreen-*.whl)"
# The release DAG file (deploy/dags/release_apps.py), baked into the image's DAGs folder; the apps
# it reads are mounted at $BLUEGREEN_APPS_DIR (deploy/helm/values.yaml: a ConfigMap).
COPY --chown=airflow:root deploy/dags/release_apps.py /opt/airflow/dags/release_apps.py
