"""A small client for Airflow 3.3's public REST API (``/api/v2``), as the UI and scripts use it.

Each method is a thin wrapper over one or two endpoints; an unexpected status raises
:class:`RestError` with the method, URL, status and body.  The ``wait_*`` methods poll and,
on timeout, say what they last saw plus the ``diagnostics()`` text the owner gives
(the services' log tails).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

import requests

FINISHED_RUN_STATES = ("success", "failed")


class RestError(AssertionError):
    """An answer other than the one expected."""

    def __init__(self, response: requests.Response, expected: Iterable[int]):
        self.response = response
        self.status = response.status_code
        try:
            self.body = response.json()
        except ValueError:
            self.body = response.text
        req = response.request
        sent = req.body.decode() if isinstance(req.body, bytes) else req.body
        super().__init__(
            f"{req.method} {req.url} answered {self.status} (expected {sorted(expected)}): "
            f"{json.dumps(self.body, default=str)[:3000]}" + (f"\nrequest body: {sent[:2000]}" if sent else "")
        )


class WaitTimeout(AssertionError):
    pass


def _q(value: str) -> str:
    return quote(str(value), safe="")


class AirflowRest:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        diagnostics: Callable[[], str] | None = None,
        timeout: float = 30,
    ):
        self.base_url = base_url.rstrip("/")
        self.api = f"{self.base_url}/api/v2"
        self.username, self.password = username, password
        self.diagnostics = diagnostics or (lambda: "")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False  # no proxies for 127.0.0.1

    # -- plumbing ---------------------------------------------------------------------------
    def login(self) -> str:
        """``POST /auth/token`` (201, ``{"access_token": ...}``); the token goes on every request."""
        resp = self.http.post(
            f"{self.base_url}/auth/token",
            timeout=self.timeout,
            json={"username": self.username, "password": self.password},
        )
        if resp.status_code not in (200, 201):
            raise RestError(resp, (200, 201))
        token = resp.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        return token

    def request(self, method: str, path: str, expected: Iterable[int] = (200,), **kwargs) -> requests.Response:
        """``path`` is relative to ``/api/v2`` (or absolute from the server root if it starts with ``//``)."""
        url = self.base_url + path[1:] if path.startswith("//") else self.api + path
        kwargs.setdefault("timeout", self.timeout)
        if "Authorization" not in self.http.headers:
            self.login()
        resp = self.http.request(method, url, **kwargs)
        if resp.status_code == 401:  # token expired (24 h) or never issued
            self.login()
            resp = self.http.request(method, url, **kwargs)
        expected = tuple(expected)
        if expected and resp.status_code not in expected:
            raise RestError(resp, expected)
        return resp

    def get(self, path: str, **params):
        return self.request("GET", path, params=params or None).json()

    def _timeout(self, what: str, last) -> WaitTimeout:
        extra = self.diagnostics()
        return WaitTimeout(
            f"timed out waiting for {what}; last seen: {json.dumps(last, default=str)[:3000]}"
            + (f"\n{extra}" if extra else "")
        )

    # -- server ---------------------------------------------------------------------------------
    def version(self) -> dict:
        return self.get("/version")

    def health(self) -> dict:
        """``GET /api/v2/monitor/health``: ``{"metadatabase": {"status"}, "scheduler": {"status",
        "latest_scheduler_heartbeat"}, "triggerer": {...}, "dag_processor": {...}}``; a status is
        ``healthy``, ``unhealthy`` or (triggerer, dag_processor: never started) null."""
        return self.get("/monitor/health")

    def import_errors(self) -> list[dict]:
        return self.get("/importErrors", limit=100)["import_errors"]

    # -- DAGs -----------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict:
        return self.get(f"/dags/{_q(dag_id)}")

    def dag_details(self, dag_id: str) -> dict:
        """Includes ``params`` (the trigger form) and ``timetable_summary``."""
        return self.get(f"/dags/{_q(dag_id)}/details")

    def wait_for_dag(self, dag_id: str, timeout: float = 60) -> dict:
        """Until the dag-processor has parsed the DAG and the API serves it."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            resp = self.request("GET", f"/dags/{_q(dag_id)}", expected=(200, 404))
            if resp.status_code == 200:
                return resp.json()
            last = resp.json()
            if time.monotonic() > deadline:
                raise self._timeout(
                    f"DAG {dag_id} (import errors: {json.dumps(self.import_errors(), default=str)[:3000]})", last
                )
            time.sleep(0.5)

    def unpause(self, dag_id: str) -> dict:
        return self.request("PATCH", f"/dags/{_q(dag_id)}", json={"is_paused": False}).json()

    def pause(self, dag_id: str) -> dict:
        return self.request("PATCH", f"/dags/{_q(dag_id)}", json={"is_paused": True}).json()

    def next_dagrun(self, dag_id: str) -> dict:
        """What the scheduler plans next, from ``GET /api/v2/dags/{id}``: ``next_dagrun_logical_date``,
        ``next_dagrun_run_after`` (when the run is created), ``next_dagrun_data_interval_start/_end``
        (ISO strings or None), plus ``timetable_summary`` and ``is_paused``."""
        dag = self.dag(dag_id)
        keys = (
            "next_dagrun_logical_date",
            "next_dagrun_run_after",
            "next_dagrun_data_interval_start",
            "next_dagrun_data_interval_end",
            "timetable_summary",
            "timetable_description",
            "is_paused",
        )
        return {k: dag.get(k) for k in keys}

    # -- runs -----------------------------------------------------------------------------------
    def trigger(
        self,
        dag_id: str,
        conf: dict | None = None,
        run_id: str | None = None,
        note: str | None = None,
        logical_date: str | None = None,
        check: bool = True,
    ):
        """``POST /api/v2/dags/{id}/dagRuns``.  ``logical_date`` must be sent (null is fine).

        Returns the new run's JSON; with ``check=False`` returns the ``requests.Response`` whatever
        its status, for tests that expect a refusal (a conf that fails the Params: 400)."""
        body = {"logical_date": logical_date, "conf": conf or {}}
        if run_id is not None:
            body["dag_run_id"] = run_id
        if note is not None:
            body["note"] = note
        resp = self.request("POST", f"/dags/{_q(dag_id)}/dagRuns", expected=(200,) if check else (), json=body)
        return resp.json() if check else resp

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{_q(dag_id)}/dagRuns", limit=100, order_by="run_after")["dag_runs"]

    def set_run_note(self, dag_id: str, run_id: str, note: str) -> dict:
        return self.request(
            "PATCH", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", json={"note": note}, params={"update_mask": "note"}
        ).json()

    def wait_run(
        self, dag_id: str, run_id: str, states: Iterable[str] = FINISHED_RUN_STATES, timeout: float = 120
    ) -> dict:
        states = tuple(states)
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                raise self._timeout(
                    f"run {dag_id}/{run_id} to be {states} (tasks: {self.task_instances(dag_id, run_id)})", run
                )
            time.sleep(0.5)

    # -- task instances -------------------------------------------------------------------------
    def task_instance_list(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances", limit=100)["task_instances"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """{task_id: state} (None: not scheduled yet)."""
        return {ti["task_id"]: ti["state"] for ti in self.task_instance_list(dag_id, run_id)}

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.get(f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}")

    def wait_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str] | str, timeout: float = 120
    ) -> dict:
        """Until the task instance is in one of ``states``; fails early if the run ends first."""
        states = (states,) if isinstance(states, str) else tuple(states)
        deadline = time.monotonic() + timeout
        while True:
            resp = self.request(
                "GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}", expected=(200, 404)
            )
            ti = resp.json()
            if resp.status_code == 200 and ti["state"] in states:
                return ti
            if resp.status_code == 200 and ti["state"] not in states:
                run = self.run(dag_id, run_id)
                if run["state"] in FINISHED_RUN_STATES:
                    raise AssertionError(
                        f"run {dag_id}/{run_id} ended {run['state']} before {task_id} was "
                        f"{states}: tasks {self.task_instances(dag_id, run_id)}"
                    )
            if time.monotonic() > deadline:
                raise self._timeout(
                    f"{dag_id}/{run_id}/{task_id} to be {states} (tasks: {self.task_instances(dag_id, run_id)})", ti
                )
            time.sleep(0.3)

    def wait_trigger_running(self, dag_id: str, run_id: str, task_id: str, timeout: float = 60) -> dict:
        """Until a deferred task's trigger is assigned to a triggerer (the TI's ``triggerer_job``)."""
        deadline = time.monotonic() + timeout
        while True:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti["state"] != "deferred":
                raise AssertionError(f"{dag_id}/{run_id}/{task_id} is {ti['state']}, not deferred")
            if ti.get("triggerer_job"):
                return ti
            if time.monotonic() > deadline:
                raise self._timeout(f"a triggerer to take {dag_id}/{run_id}/{task_id}'s trigger", ti)
            time.sleep(0.3)

    def clear(
        self,
        dag_id: str,
        run_id: str,
        task_ids: list[str],
        include_downstream: bool = True,
        only_failed: bool = False,
        **extra,
    ) -> list[dict]:
        """``POST /api/v2/dags/{id}/clearTaskInstances`` for real (the body's defaults are
        ``dry_run=true, only_failed=true``).  Returns the cleared task instances."""
        body = {
            "dag_run_id": run_id,
            "task_ids": list(task_ids),
            "include_downstream": include_downstream,
            "only_failed": only_failed,
            "dry_run": False,
            **extra,
        }
        return self.request("POST", f"/dags/{_q(dag_id)}/clearTaskInstances", json=body).json()["task_instances"]

    def mark_task(
        self, dag_id: str, run_id: str, task_id: str, state: str, note: str | None = None, **extra
    ) -> list[dict]:
        """The UI's "Mark as success/failed/skipped": ``PATCH .../taskInstances/{task_id}``
        ``{"new_state": ...}`` (allowed: success, failed, skipped).  Returns the changed instances."""
        body = {"new_state": state, **extra}
        if note is not None:
            body["note"] = note
        resp = self.request("PATCH", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}", json=body)
        return resp.json()["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """``GET .../logs/{try}`` (JSON; 3.3 answers only application/json or application/x-ndjson,
        with structured entries) rendered as text, one line an entry."""
        resp = self.request(
            "GET",
            f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/{int(try_number)}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        lines = []
        for entry in resp.json().get("content") or []:
            if isinstance(entry, str):
                lines.append(entry)
                continue
            entry = dict(entry)
            head = " ".join(str(entry.pop(k)) for k in ("timestamp", "level", "event") if entry.get(k) is not None)
            for k in ("logger", "sources", "chan"):
                entry.pop(k, None)
            lines.append(head + (f" {json.dumps(entry, default=str)}" if entry else ""))
        return "\n".join(lines)

    def wait_log(
        self, dag_id: str, run_id: str, task_id: str, text: str, try_number: int = 1, timeout: float = 60
    ) -> str:
        """Until the task's log (a deferred task's includes its trigger's lines) contains ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.task_log(dag_id, run_id, task_id, try_number)
            if text in log:
                return log
            if time.monotonic() > deadline:
                raise self._timeout(f"{text!r} in the log of {dag_id}/{run_id}/{task_id} try {try_number}", log[-3000:])
            time.sleep(0.5)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1):
        """The XCom's value (deserialized), or None if the task pushed none under ``key``."""
        resp = self.request(
            "GET",
            f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}",
            params={"deserialize": "true", "map_index": map_index},
            expected=(200, 404),
        )
        return resp.json()["value"] if resp.status_code == 200 else None

    # -- human in the loop ----------------------------------------------------------------------
    def hitl_details(self, dag_id: str, run_id: str) -> list[dict]:
        """``GET /api/v2/dags/{id}/dagRuns/{run}/hitlDetails``: each pending or answered request."""
        return self.get(f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/hitlDetails", limit=100)["hitl_details"]

    def hitl_respond(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: list[str],
        params_input: dict | None = None,
        map_index: int = -1,
    ) -> dict:
        """What the Required Actions page sends: ``PATCH .../taskInstances/{task}/{map_index}/hitlDetails``."""
        resp = self.request(
            "PATCH",
            f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/{int(map_index)}/hitlDetails",
            json={"chosen_options": list(chosen_options), "params_input": params_input or {}},
        )
        return resp.json()

    # -- variables ------------------------------------------------------------------------------
    def set_variable(self, key: str, value, description: str | None = None) -> dict:
        """Create or overwrite a Variable (a non-string value is stored as JSON text)."""
        body = {"key": key, "value": value if isinstance(value, str) else json.dumps(value)}
        if description is not None:
            body["description"] = description
        resp = self.request("POST", "/variables", expected=(201, 409), json=body)
        if resp.status_code == 409:
            resp = self.request("PATCH", f"/variables/{_q(key)}", json=body)
        return resp.json()

    def get_variable(self, key: str) -> str | None:
        resp = self.request("GET", f"/variables/{_q(key)}", expected=(200, 404))
        return resp.json()["value"] if resp.status_code == 200 else None

    def delete_variable(self, key: str) -> None:
        self.request("DELETE", f"/variables/{_q(key)}", expected=(204, 404))
