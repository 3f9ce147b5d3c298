"""The BCS connection's form in Airflow's UI, written once.  ``provider.py`` registers it (Airflow 3's
UI builds the form from the provider's "conn-fields" and "ui-field-behaviour"); ``BcsHook`` answers
``get_ui_field_behaviour`` with it.  Plain data: the providers manager imports it in every Airflow
process."""

CONN_FIELDS = {
    "cluster_id": {"label": "Cluster ID (BCS-ClusterID)", "schema": {"type": ["string", "null"]}},
    "ca_bundle": {"label": "CA bundle (path)", "schema": {"type": ["string", "null"]}},
    "verify": {"label": "Verify TLS", "schema": {"type": ["boolean", "null"]}},
    "timeout": {"label": "Request timeout (seconds)", "schema": {"type": ["number", "null"]}},
}
HIDDEN_FIELDS = ["login", "schema"]
RELABELING = {"host": "API gateway URL", "password": "BCS token"}
PLACEHOLDERS = {"host": "https://bcs-api.example.com", "cluster_id": "BCS-MESOS-10000"}
