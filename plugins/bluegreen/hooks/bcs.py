"""A hook for the BCS API gateway: the v4 Mesos scheduler and storage API that bcs-client calls.

Connection (type ``bcs``):
  host      the API gateway's address, e.g. ``https://bcs-api.example.com`` (scheme optional; https default)
  port      optional
  password  the BCS token, sent as ``Authorization: Bearer <token>`` (never logged)
  extra     {"cluster_id": "BCS-MESOS-10000",   sent as the BCS-ClusterID header
             "ca_bundle": "/path/ca.pem",       verify TLS against this CA (default: the system CAs)
             "verify": true,                    TLS verification; on unless explicitly false
             "timeout": 30}                     seconds per request

Connection errors, timeouts, 429 (its ``Retry-After`` honoured) and 500/502/503/504 are
retried with backoff and jitter within a budget (``budget``: the app's
``api_retry_budget`` when an adapter builds the hook); other answers fail at once.

Every answer is the ``{result, code, message, data}`` envelope; HTTP 200 with a
non-zero code is an error.  Errors raise ``BcsApiError`` with the BCS code and
message (bk-bcs bcs-common/common/errorCode.go).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseHook

from . import bcs_form
from .connection_url import connection_url
from .retrying import Budget, Transient, raise_if_transient, retrying
from .tls import tls_verify
from .user_agent import USER_AGENT

# bk-bcs bcs-common/common/errorCode.go
NOT_FOUND = 1405202  # BcsErrMesosSchedNotFound: update/delete of a missing object
ALREADY_EXISTS = 1405201  # BcsErrMesosSchedResourceExist
STORAGE_NOT_EXIST = 1405087  # BcsErrStorageResourceNotExist: storage inspect of a missing object

SCHEDULER = "/bcsapi/v4/scheduler/mesos"
STORAGE = "/bcsapi/v4/storage"


class BcsApiError(Exception):
    """A BCS API call failed: ``code`` is the BCS code (or the HTTP status when the gateway
    answered without an envelope), ``message`` the API's message."""

    def __init__(self, method: str, path: str, code: int, message: str, http_status: int = 200):
        self.method, self.path, self.code, self.message, self.http_status = method, path, code, message, http_status
        http = f"HTTP {http_status}, " if http_status != 200 else ""
        super().__init__(f"BCS API {method} {path} failed ({http}code {code}): {message}")


class BcsHook(BaseHook):
    conn_name_attr = "bcs_conn_id"
    default_conn_name = "bcs_default"
    conn_type = "bcs"
    hook_name = "Tencent BCS (Mesos)"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": bcs_form.HIDDEN_FIELDS,
            "relabeling": bcs_form.RELABELING,
            "placeholders": bcs_form.PLACEHOLDERS,
        }

    def __init__(
        self, bcs_conn_id: str = default_conn_name, *, connection=None, budget: Budget | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.bcs_conn_id = bcs_conn_id
        self._connection = connection
        self.budget = budget or Budget(60.0)

    # -- connection ---------------------------------------------------------------------
    @cached_property
    def connection(self):
        return self._connection or self.get_connection(self.bcs_conn_id)

    @classmethod
    async def from_connection_id_async(cls, conn_id: str) -> BcsHook:
        """For triggers: read the connection without blocking the triggerer's event loop."""
        from airflow.providers.common.compat.connection import get_async_connection

        return cls(conn_id, connection=await get_async_connection(conn_id))

    @property
    def extras(self) -> dict:
        return self.connection.extra_dejson or {}

    @cached_property
    def base_url(self) -> str:
        url = connection_url(self.connection, "https")
        if url is None:
            raise ValueError(f"connection {self.bcs_conn_id}: host (the BCS API gateway URL) is empty")
        return url

    @property
    def cluster_id(self) -> str:
        cluster = self.extras.get("cluster_id")
        if not cluster:
            raise ValueError(f"connection {self.bcs_conn_id}: extra cluster_id is not set")
        return cluster

    @property
    def verify(self) -> bool | str:
        """TLS verification is on unless the connection explicitly turns it off."""
        return tls_verify(self.extras)

    @cached_property
    def session(self):
        import requests

        session = requests.Session()
        session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "BCS-ClusterID": self.cluster_id,
                "User-Agent": USER_AGENT,
            }
        )
        if self.connection.password:
            session.headers["Authorization"] = f"Bearer {self.connection.password}"
        session.verify = self.verify
        return session

    def get_conn(self):
        return self.session

    # -- the envelope -------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        """One API call; returns the envelope's ``data`` or raises BcsApiError (TransientError
        when the gateway kept failing past the retry budget)."""
        import requests

        url = self.base_url + path
        timeout = float(self.extras.get("timeout", 30))

        def attempt():
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify
                resp = self.session.request(method, url, json=json, params=params, timeout=timeout, verify=self.verify)
            except (requests.ConnectionError, requests.Timeout) as e:
                raise Transient(f"cannot reach the BCS API gateway: {type(e).__name__}") from None
            raise_if_transient(
                resp.status_code, f"HTTP {resp.status_code} {(resp.text or '')[:200]}".strip(), resp.headers
            )
            return self._unwrap(method, path, resp)

        return retrying(attempt, self.budget, f"BCS API {method} {path}", self.log)

    @staticmethod
    def _unwrap(method: str, path: str, resp) -> Any:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "code" not in body:
            raise BcsApiError(method, path, resp.status_code, (resp.text or resp.reason or "")[:300], resp.status_code)
        code = int(body.get("code") or 0)
        if resp.status_code != 200 or code != 0:
            raise BcsApiError(method, path, code or resp.status_code, str(body.get("message", "")), resp.status_code)
        return body.get("data")

    # -- scheduler (writes) ---------------------------------------------------------------
    def create(self, kind: str, namespace: str, body: dict) -> Any:
        """POST a deployment/service/application (``bcs-client create -t <kind>``)."""
        return self.request("POST", f"{SCHEDULER}/namespaces/{quote(namespace)}/{_plural(kind)}", json=body)

    def update_service(self, namespace: str, body: dict) -> Any:
        """PUT the whole service object (``bcs-client update -t service``); the name is in the body."""
        return self.request("PUT", f"{SCHEDULER}/namespaces/{quote(namespace)}/services", json=body)

    def delete(self, kind: str, namespace: str, name: str, enforce: bool = False) -> Any:
        return self.request(
            "DELETE",
            f"{SCHEDULER}/namespaces/{quote(namespace)}/{_plural(kind)}/{quote(name)}",
            params={"enforce": "1" if enforce else "0"},
        )

    def scale_deployment(self, namespace: str, name: str, instances: int) -> Any:
        return self.request(
            "PUT", f"{SCHEDULER}/namespaces/{quote(namespace)}/deployments/{quote(name)}/scale/{int(instances)}"
        )

    def definition(self, kind: str, namespace: str, name: str) -> Any:
        """The stored original JSON of a deployment or application (``bcs-client get``)."""
        return self.request("GET", f"{SCHEDULER}/definition/{kind}/{quote(namespace)}/{quote(name)}")

    # -- storage (reads) ------------------------------------------------------------------
    def query(self, kind: str, **filters: str) -> list[dict]:
        """Storage records of a kind matching the filters (``bcs-client list``); each record's
        ``data`` is the object."""
        path = f"{STORAGE}/query/mesos/dynamic/clusters/{quote(self.cluster_id)}/{kind}"
        return self.request("POST", path, json={k: str(v) for k, v in filters.items()}) or []

    def inspect(self, kind: str, namespace: str, name: str) -> dict | None:
        """One storage record (``bcs-client inspect``), or None when it does not exist."""
        path = (
            f"{STORAGE}/mesos/dynamic/namespace_resources/clusters/{quote(self.cluster_id)}/namespaces/"
            f"{quote(namespace)}/{kind}/{quote(name)}"
        )
        try:
            return self.request("GET", path) or None
        except BcsApiError as e:
            if e.code == STORAGE_NOT_EXIST:
                return None
            raise

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.query("service", namespace="defaultGroup")
            return True, f"reached {self.base_url} for cluster {self.cluster_id}"
        except Exception as e:  # the UI's connection test shows the message
            return False, str(e)


def _plural(kind: str) -> str:
    return {
        "deployment": "deployments",
        "service": "services",
        "application": "applications",
        "configmap": "configmaps",
    }.get(kind, kind)
