"""Airflow provider metadata: registers the BCS connection type and its form fields with Airflow.

(Plugins cannot register connection types; installing this project, as make does, makes it a
provider too.  Airflow 3's UI builds the connection form from "conn-fields".)"""

from bluegreen import __version__
from bluegreen.hooks import bcs_form


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
                "conn-fields": bcs_form.CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": bcs_form.HIDDEN_FIELDS,
                    "relabeling": bcs_form.RELABELING,
                    "placeholders": bcs_form.PLACEHOLDERS,
                },
            },
        ],
    }
