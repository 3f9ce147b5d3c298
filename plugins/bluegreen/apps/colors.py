"""The two colors of a blue-green release: an app config names a workload per color."""

from __future__ import annotations

BLUE, GREEN = "blue", "green"
COLORS = (BLUE, GREEN)


def other(color: str) -> str:
    return GREEN if color == BLUE else BLUE
