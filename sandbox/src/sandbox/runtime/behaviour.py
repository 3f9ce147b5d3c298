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
    registry.local/shop:v2-error-rate-20       20% of its ordinary requests answer 500 (0-100,
                                               fractions allowed: error-rate-2.5); readiness passes
    registry.local/shop:v2-latency-300ms       ordinary requests are answered 300 ms late (also latency-1.5s)

*Ordinary* requests are all but ``/healthz`` (readiness) and ``/metrics`` (Prometheus),
which are never slowed down nor failed by ``error-rate``/``latency``: a release with
an error rate or a latency is a bad release that readiness cannot see, only its
metrics (``pod.py``, "Metrics").  The errors are deterministic, not random: the
container's n-th ordinary request (from 0) errors when floor((n+1)*p) > floor(n*p),
p = rate/100, so any k consecutive requests hold floor(k*p) or ceil(k*p) errors
(error-rate-20: the 5th, 10th, 15th, ...).  A rate above 100 counts as 100.

The control endpoint can override the behaviour of an image at run time (for
example to "fix" a never-ready release, or to make a running release bad with
``error-rate-50``), see ``Runtime.override_behaviour``: an override *replaces* the
image's behaviour as a whole (keywords it does not name take their defaults, not
the image tag's), and ``DELETE /behaviour`` gives every image its tag's behaviour back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction

_SECONDS = r"(\d+(?:\.\d+)?)s"
_PATTERNS = {
    "ready_after": re.compile(rf"(?:^|[-_.])ready-after-{_SECONDS}(?=$|[-_.])"),
    "fail_after": re.compile(rf"(?:^|[-_.])fail-after-{_SECONDS}(?=$|[-_.])"),
    "stop_delay": re.compile(rf"(?:^|[-_.])slow-stop-{_SECONDS}(?=$|[-_.])"),
    "never_ready": re.compile(r"(?:^|[-_.])never-ready(?=$|[-_.])"),
    "crashloop": re.compile(r"(?:^|[-_.])crashloop(?=$|[-_.])"),
    "error_rate": re.compile(r"(?:^|[-_.])error-rate-(\d+(?:\.\d+)?)(?=$|[-_.])"),
    "latency": re.compile(r"(?:^|[-_.])latency-(\d+(?:\.\d+)?)(ms|s)(?=$|[-_.])"),
}


@dataclass(frozen=True)
class Behaviour:
    ready_after: float = 1.0
    never_ready: bool = False
    crashloop: bool = False
    fail_after: float | None = None
    stop_delay: float = 0.0
    # percent (0-100) of ordinary requests that answer 500, and seconds they are answered late
    error_rate: float = 0.0
    latency: float = 0.0

    @classmethod
    def parse(cls, spec: str, default_ready_after: float = 1.0) -> Behaviour:
        """Read the behaviour keywords out of an image tag (or a bare keyword string)."""
        values: dict = {"ready_after": default_ready_after}
        for field, pattern in _PATTERNS.items():
            match = pattern.search(spec)
            if not match:
                continue
            if field == "latency":
                number, unit = match.groups()
                values[field] = float(number) / (1000 if unit == "ms" else 1)
            elif field == "error_rate":
                values[field] = min(100.0, float(match.group(1)))
            else:
                values[field] = float(match.group(1)) if match.groups() else True
        return cls(**values)

    def errors(self, n: int) -> bool:
        """Whether the container's ``n``-th ordinary request (from 0) answers 500."""
        if self.error_rate <= 0:
            return False
        p = Fraction(str(self.error_rate)) / 100  # exact: 20% of 50 is 10, not 9 by rounding
        return (n + 1) * p // 1 > n * p // 1

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
