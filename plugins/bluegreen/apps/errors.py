"""The refusals every layer raises, defined at the bottom so that the app configs (which raise
``ConfigError`` while they load) need nothing above them.

A ``ConfigError`` is a ``ReleaseError``: bad input refuses a release like any other refusal,
with a reason a person can act on, before anything in a cluster changes.
"""

from __future__ import annotations


class ReleaseError(Exception):
    """A release step cannot go on; the message says why in one line a person can act on."""


class ConfigError(ReleaseError):
    """Bad input (an app config or a run's params), found before anything in a cluster changed."""

    def __init__(self, field: str, value, problem: str, source: str = ""):
        self.field, self.value, self.problem, self.source = field, value, problem, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}={value!r}: {problem}")
