"""Moved to ``bluegreen.apps.manifests`` (the app configs check manifests at load, below every
other layer).  Kept as an alias for code written against the old path; import the new one."""

from ..apps.manifests import *  # noqa: F401,F403
from ..apps.manifests import BCS_MESOS, KUBERNETES, PLATFORMS  # noqa: F401  (named for readers)
