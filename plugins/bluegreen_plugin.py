"""Registers bluegreen with Airflow.  The package itself (plugins/bluegreen) is imported
from sys.path, not scanned: see plugins/.airflowignore."""

from airflow.plugins_manager import AirflowPlugin


class BluegreenPlugin(AirflowPlugin):
    name = "bluegreen"
