"""Fixtures the sandbox's Kubernetes tests share: the official client on the sandbox's
kubeconfig, and a namespace per test."""

from __future__ import annotations

import kubernetes
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api(sandbox):
    return kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture
def ns(core, unique_name):
    core.create_namespace({"metadata": {"name": unique_name}})
    yield unique_name
    try:
        core.delete_namespace(unique_name)
    except ApiException:
        pass
