"""Airflow provider metadata: registers the BCS connection type and its form fields with Airflow.

(Plugins cannot register connection types; installing this project, as make does, makes it a
provider too.  Airflow 3's UI builds the connection form from "conn-fields".)"""


from bluegreen import __version__


def get_provider_info() -> dict:
    return {
        "package-name": "bluegreen",
        "name": "bluegreen",
        "description": "Blue-green releases on Kubernetes and Tencent BCS Mesos.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "bcs",
                "hook-class-name": "bluegreen.hooks.bcs.BcsHook",
                "hook-name": "Tencent BCS (Mesos)",
                "conn-fields": {
                    "cluster_id": {"label": "Cluster ID (BCS-ClusterID)", "schema": {"type": ["string", "null"]}},
                    "ca_bundle": {"label": "CA bundle (path)", "schema": {"type": ["string", "null"]}},
                    "verify": {"label": "Verify TLS", "schema": {"type": ["boolean", "null"]}},
                    "timeout": {"label": "Request timeout (seconds)", "schema": {"type": ["number", "null"]}},
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema"],
                    "relabeling": {"host": "API gateway URL", "password": "BCS token"},
                    "placeholders": {"host": "https://bcs-api.example.com", "cluster_id": "BCS-MESOS-10000"},
                },
            },
        ],
    }
