"""Registers bluegreen with Airflow: the release-window timetable (Airflow deserializes only
custom timetables a plugin registers).  The package itself (plugins/bluegreen) is imported
from sys.path, not scanned: see plugins/.airflowignore."""

from airflow.plugins_manager import AirflowPlugin

from bluegreen.apps.timetable import ReleaseWindowTimetable


class BluegreenPlugin(AirflowPlugin):
    name = "bluegreen"
    timetables = [ReleaseWindowTimetable]
