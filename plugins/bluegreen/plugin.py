"""Registers bluegreen with Airflow as a plugin: the release-window timetable (Airflow deserializes
only custom timetables a plugin registers).  Found through the package's ``airflow.plugins`` entry
point (pyproject.toml), so nothing is copied into a plugins folder."""

from airflow.plugins_manager import AirflowPlugin

from bluegreen.timetable import ReleaseWindowTimetable


class BluegreenPlugin(AirflowPlugin):
    name = "bluegreen"
    timetables = [ReleaseWindowTimetable]
