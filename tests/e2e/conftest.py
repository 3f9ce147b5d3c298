import os

import pytest

from .harness import migrate_airflow_db


@pytest.fixture(scope="session")
def airflow_db():
    migrate_airflow_db()


@pytest.fixture(scope="session")
def airflow_env(sandbox, airflow_db):
    """Airflow's connections point at this worker's sandbox."""
    os.environ.update(sandbox.environment())
    return sandbox


@pytest.fixture(scope="session")
def kube(sandbox):
    import kubernetes

    api = kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    return api


@pytest.fixture
def k8s_namespace(kube, unique_name):
    from kubernetes import client

    client.CoreV1Api(kube).create_namespace({"metadata": {"name": unique_name}})
    return unique_name
