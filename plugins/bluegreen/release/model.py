"""The words of a blue-green release, shared by both platforms.

A release moves traffic from the live color to the idle one.  Everything here is
plain data: the platform adapters produce it, the release steps and the health
checks consume it, and it travels between Airflow tasks as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# The colors and the refusals are defined with the app configs, which need them and nothing
# above; they are the model's words too, so they are named here as well.
from ..apps.colors import BLUE, COLORS, GREEN, other
from ..apps.errors import ConfigError, ReleaseError

__all__ = [
    "BLUE",
    "GREEN",
    "COLORS",
    "FIRST_COLOR",
    "SELECTS_NOTHING",
    "selects_nothing",
    "other",
    "ReleaseError",
    "ConfigError",
    "Conflict",
    "Fenced",
    "TransientError",
    "ServiceView",
    "ColorStatus",
    "Plan",
]


# A first release (no Service yet) deploys this color.
class Log(Protocol):
    """Where a release writes its progress: a ``logging.Logger``, or a task's own logger (Airflow's
    structured one), which has the same methods."""

    def debug(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def info(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def exception(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...


FIRST_COLOR = BLUE
# The selector of a first release's Service until its switch: a label no pod carries.  (Not an
# empty selector: Kubernetes gives a Service without one no endpoints, but BCS matches an empty
# selector against every taskgroup of the namespace.)
SELECTS_NOTHING = {"bluegreen.io/selects": "nothing"}


def selects_nothing(selector: dict[str, str] | None) -> bool:
    return not selector or selector == SELECTS_NOTHING


class Conflict(ReleaseError):
    """Someone changed the object between our read and our write (optimistic concurrency)."""


class Fenced(ReleaseError):
    """Another run holds (or has held) the app since this run planned: this run must not write."""


class TransientError(Exception):
    """The cluster's API kept failing in a way that may pass (timeouts, resets, 429, 5xx) for
    longer than the step's retry budget.  Not a ReleaseError: the task's own retries take over,
    and nothing is rolled back for it."""


@dataclass(frozen=True)
class ServiceView:
    """What the release model needs to know of the app's Service."""

    selector: dict[str, str]
    annotations: dict[str, str]
    # Opaque to the model: the adapter's handle for a conditional write (resourceVersion, ...).
    version: str = ""
    # Where an HTTP check can reach the Service: placeholders for the app's check URL.
    url_fields: dict[str, str] = field(default_factory=dict)
    # Opaque to the model: the adapter's copy of the object as read, so that a write conditional
    # on ``version`` need not read it again (None: the adapter reads before it writes).
    raw: dict | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ColorStatus:
    """One observation of a color's workload, judged by its platform's own readiness rule.

    ``ready`` counts the replicas that rule calls ready (Kubernetes: available;
    BCS: Running with every health check passed), so that ``ready == desired``
    means the same thing on both platforms.
    """

    exists: bool
    desired: int = 0
    ready: int = 0
    restarts: int = 0
    # Fully rolled out by the platform's rule (kubectl rollout status; BCS app Running...).
    complete: bool = False
    # A failure that waiting will not cure (ProgressDeadlineExceeded, a Failed taskgroup).
    failure: str | None = None
    # Human progress, e.g. "2/3 available".
    progress: str = ""
    image: str | None = None
    deleting: bool = False

    @classmethod
    def missing(cls) -> ColorStatus:
        return cls(exists=False, progress="not deployed")


@dataclass
class Plan:
    """What one release run does: which color goes live with which image.

    Decided once by the ``plan`` task and stored on the Service (the lock), so
    that clearing and re-running any task of the run converges on the same
    release instead of flipping colors again.
    """

    app: str
    run_id: str
    new_color: str
    old_color: str | None  # None: the first release of the app (no Service yet)
    image: str
    replicas: int
    soak_seconds: float
    # What was live before, for the record and for rollback after the old color is gone.
    old_image: str | None = None
    previous_selector: dict[str, str] | None = None
    # Set when there is nothing to do: the requested image is already live.
    noop_reason: str | None = None
    # A recorded manifest to deploy instead of the app's (a rollback to the previous release).
    manifest: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | str) -> Plan:
        fields: dict = json.loads(data) if isinstance(data, str) else data
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in fields.items() if k in known})

    def describe(self) -> str:
        if self.old_color is None:
            return f"first release of {self.app}: {self.new_color} with {self.image}"
        return f"{self.app}: {self.old_color} ({self.old_image or '?'}) -> {self.new_color} ({self.image})"
