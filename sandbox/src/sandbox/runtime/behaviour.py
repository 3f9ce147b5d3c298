"""How a sandbox pod behaves, chosen by its image tag.

No command from a manifest is ever executed: a pod is a small HTTP listener
whose life (when it becomes ready, whether it crashes, when it starts failing,
how long it takes to stop) is read from keywords in the image's tag.  Several
keywords may be combined in one tag, separated by ``-``, ``_`` or ``.``::

    registry.local/shop:v2                     ready after the sandbox's default delay
    registry.local/shop:v2-ready-after-5s      ready 5 seconds after it starts
    registry.local/shop:v2-never-ready         runs, answers, never passes readiness
    registry.local/shop:v2-crashloop           exits every few seconds; restartCount climbs
    registry.local/shop:v2-fail-after-10s      ready, then fails readiness (and answers 503) 10 s later
    registry.local/shop:v2-slow-stop-8s        takes 8 seconds to terminate

The control endpoint can override the behaviour of an image at run time (for
example to "fix" a never-ready release), see ``Runtime.override_behaviour``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_SECONDS = r"(\d+(?:\.\d+)?)s"
_PATTERNS = {
    "ready_after": re.compile(rf"(?:^|[-_.])ready-after-{_SECONDS}(?=$|[-_.])"),
    "fail_after": re.compile(rf"(?:^|[-_.])fail-after-{_SECONDS}(?=$|[-_.])"),
    "stop_delay": re.compile(rf"(?:^|[-_.])slow-stop-{_SECONDS}(?=$|[-_.])"),
    "never_ready": re.compile(r"(?:^|[-_.])never-ready(?=$|[-_.])"),
    "crashloop": re.compile(r"(?:^|[-_.])crashloop(?=$|[-_.])"),
}


@dataclass(frozen=True)
class Behaviour:
    ready_after: float = 1.0
    never_ready: bool = False
    crashloop: bool = False
    fail_after: float | None = None
    stop_delay: float = 0.0

    @classmethod
    def parse(cls, spec: str, default_ready_after: float = 1.0) -> Behaviour:
        """Read the behaviour keywords out of an image tag (or a bare keyword string)."""
        values: dict = {"ready_after": default_ready_after}
        for field, pattern in _PATTERNS.items():
            match = pattern.search(spec)
            if not match:
                continue
            values[field] = float(match.group(1)) if match.groups() else True
        return cls(**values)

    @classmethod
    def from_image(cls, image: str, default_ready_after: float = 1.0) -> Behaviour:
        return cls.parse(image_tag(image), default_ready_after)

    def with_defaults(self, **changes) -> Behaviour:
        return replace(self, **changes)


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when it has none); a digest is not a tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""
