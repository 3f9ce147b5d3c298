import os

import pytest

from .apps import K8sApp, MesosApp
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

    return kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))


@pytest.fixture
def k8s_app(tmp_path, kube, unique_name, airflow_env):
    from kubernetes import client

    client.CoreV1Api(kube).create_namespace({"metadata": {"name": unique_name}})
    return lambda **fields: K8sApp(tmp_path, unique_name, kube, **fields)


@pytest.fixture
def mesos_app(tmp_path, sandbox, unique_name, airflow_env):
    return lambda **fields: MesosApp(tmp_path, unique_name, sandbox, **fields)


@pytest.fixture(params=["kubernetes", "bcs-mesos"])
def release_app(request):
    """The same release behaviours, on each platform."""
    return request.getfixturevalue("k8s_app" if request.param == "kubernetes" else "mesos_app")
