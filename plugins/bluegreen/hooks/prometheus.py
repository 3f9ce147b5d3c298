"""A hook for Prometheus' HTTP API (``/api/v1/query``): what the release's metric analysis asks.

Connection (any type, e.g. ``http``):
  host      the server's address, e.g. ``https://prometheus.example.com`` (scheme optional; http
            default, as Prometheus serves), with any path prefix it is served under
  port      optional
  login, password
            basic auth when both are set; a password alone is sent as ``Authorization: Bearer``
            (never logged)
  extra     {"ca_bundle": "/path/ca.pem",  verify TLS against this CA (default: the system CAs)
             "verify": true,               TLS verification; on unless explicitly false
             "timeout": 10}                seconds per request

Connection errors, timeouts, 429 and 5xx are retried with backoff within a budget (a short
one: the analysis measures again at its next interval, and its ``unreachable`` rule decides);
a 400/422 (bad PromQL, or a query Prometheus cannot execute) fails at once with its message.
"""

from __future__ import annotations

from functools import cached_property

from airflow.sdk import BaseHook

from ..release.model import ReleaseError
from ..release.ports import Metrics
from .connection_url import connection_url
from .retrying import Budget, Transient, raise_if_transient, retrying
from .tls import tls_verify
from .user_agent import USER_AGENT


class PrometheusHook(BaseHook, Metrics):
    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "Prometheus"

    def __init__(self, prometheus_conn_id: str = default_conn_name, *, budget: Budget | None = None, **kwargs):
        super().__init__(**kwargs)
        self.prometheus_conn_id = prometheus_conn_id
        self.budget = budget or Budget(10.0)

    @cached_property
    def connection(self):
        return self.get_connection(self.prometheus_conn_id)

    @property
    def extras(self) -> dict:
        return self.connection.extra_dejson or {}

    @cached_property
    def base_url(self) -> str:
        url = connection_url(self.connection, "http")
        if url is None:
            raise ReleaseError(f"connection {self.prometheus_conn_id}: host (the Prometheus server's URL) is empty")
        return url

    @property
    def where(self) -> str:  # type: ignore[override]
        try:
            return f"Prometheus at {self.base_url} (connection {self.prometheus_conn_id})"
        except Exception:  # the connection itself is what is wrong: say which
            return f"Prometheus (connection {self.prometheus_conn_id})"

    @property
    def verify(self) -> bool | str:
        """TLS verification is on unless the connection explicitly turns it off."""
        return tls_verify(self.extras)

    @cached_property
    def session(self):
        import requests

        session = requests.Session()
        session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        conn = self.connection
        if conn.login and conn.password:
            session.auth = (conn.login, conn.password)
        elif conn.password:
            session.headers["Authorization"] = f"Bearer {conn.password}"
        return session

    def get_conn(self):
        return self.session

    def query(self, promql: str) -> list[float]:
        import requests

        from ..release.model import TransientError

        url = f"{self.base_url}/api/v1/query"
        timeout = float(self.extras.get("timeout", 10))

        def attempt() -> list[float]:
            try:
                resp = self.session.post(url, data={"query": promql}, timeout=timeout, verify=self.verify)
            except (requests.ConnectionError, requests.Timeout) as e:
                raise Transient(f"cannot reach {self.where}: {type(e).__name__}") from None
            raise_if_transient(resp.status_code, f"{self.where} answered HTTP {resp.status_code}", resp.headers)
            try:
                body = resp.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or body.get("status") != "success":
                error = body.get("error") if isinstance(body, dict) else (resp.text or "")[:200]
                raise ReleaseError(f"{self.where} refused the query {promql!r}: HTTP {resp.status_code}: {error}")
            return series_values(body.get("data") or {})

        try:
            return retrying(attempt, self.budget, f"Prometheus query {promql[:80]!r}", self.log)
        except TransientError:
            raise
        except ValueError as e:  # an answer that is not Prometheus'
            raise ReleaseError(f"{self.where}: unexpected answer to {promql!r}: {e}") from None


def series_values(data: dict) -> list[float]:
    """The values of a ``/api/v1/query`` answer's ``data``: a vector's samples, a scalar's value
    ("NaN", "+Inf" as Prometheus writes them); a matrix has no instant value and is refused."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        return [float(sample["value"][1]) for sample in result or []]
    if kind == "scalar" and isinstance(result, list):
        return [float(result[1])]
    raise ValueError(f"a {kind} answer: the check's query must give an instant vector or a scalar")
