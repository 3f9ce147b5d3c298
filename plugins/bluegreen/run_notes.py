"""The run's note: what a release did, in one line a person reads in the UI's run list.

Tasks in Airflow 3 cannot write their own run's note (the Execution API has no
call for it), so the note goes through the public REST API, with the credentials
of the Airflow connection ``bluegreen_airflow_api`` (host = the api-server's URL,
login and password of a user allowed to edit runs).  Without that connection the
note is skipped with a log line; the release itself never fails over its note.
"""

from __future__ import annotations

from urllib.parse import quote

from .release.model import Log

CONN_ID = "bluegreen_airflow_api"


def release_note(app: str, plan, outcome: str, reason: str = "") -> str:
    frm = f"{plan.old_color} ({plan.old_image})" if plan.old_color else "nothing (first release)"
    text = f"{app}: {frm} -> {plan.new_color} ({plan.image}): {outcome}"
    return f"{text}\nReason: {reason}" if reason else text


def set_run_note(dag_id: str, run_id: str, note: str, log: Log, conn_id: str = CONN_ID) -> bool:
    import requests
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("run note not written (no Airflow connection %s): %s", conn_id, note.splitlines()[0])
        return False
    base = (conn.host or "").rstrip("/")
    if "://" not in base:
        base = f"{conn.schema or 'http'}://{base}" + (f":{conn.port}" if conn.port else "")
    try:
        token = requests.post(
            f"{base}/auth/token", json={"username": conn.login, "password": conn.password}, timeout=10
        )
        token.raise_for_status()
        resp = requests.patch(
            f"{base}/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}",
            json={"note": note},
            params={"update_mask": "note"},
            timeout=10,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        resp.raise_for_status()
    except (requests.RequestException, KeyError, ValueError) as e:
        log.warning("run note not written (%s): %s", type(e).__name__, note.splitlines()[0])
        return False
    return True
