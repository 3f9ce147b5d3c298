"""What a sandbox pod's ``GET /metrics`` answers: the Prometheus text exposition format 0.0.4.

One ``ContainerMetrics`` per container run: a killed or crash-looping container starts
again from zero, as a real process's counters do (Prometheus's ``rate()`` reads the drop
as a counter reset).  Metrics (``/metrics`` and ``/healthz`` themselves are not counted)::

    http_requests_total{code="200",method="GET"}     counter: requests answered, by status and method
    http_request_duration_seconds_bucket{le="0.005"}  histogram: from the request's head read to its
    http_request_duration_seconds_sum                 answer written (a ``latency-`` keyword's delay
    http_request_duration_seconds_count               included)
    process_start_time_seconds                        gauge: when this container started (Unix time)

``code="200"`` and ``code="500"`` for GET are exposed from the start, at 0, as the
Prometheus docs advise for series known in advance, so that a pod's first error shows
in ``rate()`` at once instead of starting a new series that ``rate()`` needs two
scrapes of.
"""

from __future__ import annotations

import time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PRESET = (("200", "GET"), ("500", "GET"))


class ContainerMetrics:
    def __init__(self, started_at: float | None = None):
        self.started_at = time.time() if started_at is None else started_at
        self.requests: dict[tuple[str, str], int] = dict.fromkeys(_PRESET, 0)
        self.bucket_counts = [0] * len(BUCKETS)  # per bucket, not cumulative
        self.duration_sum = 0.0
        self.duration_count = 0
        # ordinary requests the application itself answered (not 503 while unhealthy): the
        # index that error-rate's deterministic schedule counts by
        self.handled = 0

    def observe(self, method: str, code: int, seconds: float) -> None:
        key = (str(code), method)
        self.requests[key] = self.requests.get(key, 0) + 1
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.bucket_counts[i] += 1
                break
        self.duration_sum += seconds
        self.duration_count += 1

    def total(self, code: int | str | None = None) -> int:
        return sum(n for (c, _m), n in self.requests.items() if code is None or c == str(code))

    def render(self) -> str:
        lines = [
            "# HELP http_requests_total HTTP requests answered (not /metrics nor /healthz), by status code and method.",
            "# TYPE http_requests_total counter",
        ]
        for (code, method), n in sorted(self.requests.items()):
            lines.append(f'http_requests_total{{code="{code}",method="{_escape(method)}"}} {n}')
        lines += [
            "# HELP http_request_duration_seconds Time from a request's head read to its answer written.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(BUCKETS, self.bucket_counts, strict=True):
            cumulative += n
            lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}')
        lines.append(f"http_request_duration_seconds_sum {self.duration_sum!r}")
        lines.append(f"http_request_duration_seconds_count {self.duration_count}")
        lines += [
            "# HELP process_start_time_seconds Start time of the container since the Unix epoch, in seconds.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started_at!r}",
        ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
