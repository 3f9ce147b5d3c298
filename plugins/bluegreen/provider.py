"""Airflow provider metadata: registers the BCS connection type (and its form) with Airflow."""


def get_provider_info() -> dict:
    return {
        "package-name": "bluegreen",
        "name": "bluegreen",
        "description": "Blue-green releases on Kubernetes and Tencent BCS Mesos.",
        "versions": ["0.1.0"],
        "connection-types": [
            {"connection-type": "bcs", "hook-class-name": "bluegreen.hooks.bcs.BcsHook"},
        ],
    }
