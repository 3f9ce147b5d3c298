"""Release notifications: an app's ``notify`` receivers told about its releases.

One ``ReleaseNotifier`` (Airflow's ``BaseNotifier``) per event, wired by the DAG factory as the
callback of the task that knows the event (see ``task_callbacks``):

    started            plan's on_success_callback (the plan, with both colors, is in its XCom)
    awaiting_approval  approve's HITL ``notifiers`` (called as the task starts to wait)
    switched           switch_traffic's on_success_callback
    released           finish's on_success_callback
    rolled_back        rollback's on_success_callback
    failed             on_failure_callback of the steps whose failure no rollback follows:
                       [wait_for_window,] plan (nothing changed), retire_old_color and finish
                       (the new color serves), rollback (a person must finish it)

Receivers: Slack through the Slack provider's ``SlackWebhookNotifier`` (a ``slackwebhook``
connection), e-mail through the SMTP provider's ``SmtpNotifier`` (an ``smtp`` connection), and a
generic webhook (``WebhookNotifier`` here: an ``http`` connection, JSON POST, a bearer token from
the connection's password).  A receiver that fails, refuses or hangs never fails or holds a
release: each one is sent from a thread of its own and waited for at most its ``timeout``; every
error is caught and logged with the connection's secrets cut out.  Messages carry no secret: they
are made from the plan, the run's params and the step's reason only.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseNotifier

from .apps.notify import Notify, Receiver
from .operators import FAILURE_KEY, PLAN_TASK
from .release.model import Plan

# What each event says happened; "failed" depends on the task (FAILED_OUTCOMES).
OUTCOMES = {
    "started": "release started",
    "awaiting_approval": "waiting for approval of the switch",
    "switched": "traffic switched to the new color; the soak runs",
    "released": "released",
    "rolled_back": "rolled back",
    "failed": "FAILED",
}
FAILED_OUTCOMES = {
    "wait_for_window": "FAILED before anything changed",
    "plan": "FAILED before anything changed",
    "retire_old_color": "FAILED after the switch (the new color serves; the old one is not retired)",
    "finish": "FAILED after the switch (the new color serves; the release is not recorded)",
    "rollback": "ROLLBACK FAILED: a person must finish it",
}
# Which task's callback tells which event (the DAG factory wires them so).
SUCCESS_EVENTS = {"plan": "started", "switch_traffic": "switched", "finish": "released", "rollback": "rolled_back"}
FAILURE_EVENT_TASKS = tuple(FAILED_OUTCOMES)
APPROVAL_TASK = "approve"
MAX_CAUSE = 2000


@dataclass(frozen=True)
class Message:
    """One notification, in the words every receiver gets (text, Slack, HTML, JSON)."""

    event: str
    app: str
    dag_id: str
    run_id: str
    outcome: str
    old_color: str | None = None
    old_image: str | None = None
    new_color: str | None = None
    image: str | None = None
    cause: str = ""  # why it failed or rolled back
    now: str = ""  # what serves now, when the event tells
    reason: str = ""  # the run's own reason (the form's Reason)
    run_url: str = ""
    approval_url: str = ""

    @property
    def subject(self) -> str:
        target = f" {self.new_color} ({self.image})" if self.new_color else f" {self.image}" if self.image else ""
        return f"[bluegreen] {self.app}:{target} {self.outcome}"

    def lines(self) -> list[tuple[str, str]]:
        if self.old_color:
            frm = f"{self.old_color} ({self.old_image})"
        else:
            frm = "nothing (first release)" if self.new_color else "not known (the release was not planned)"
        to = f"{self.new_color} ({self.image})" if self.new_color else (self.image or "?")
        rows = [("App", self.app), ("From", frm), ("To", to), ("Outcome", self.outcome)]
        rows += [(k, v) for k, v in (("Cause", self.cause), ("Now", self.now), ("Reason", self.reason)) if v]
        if self.approval_url:
            rows.append(("Approve or reject", self.approval_url))
        rows.append(("Run", self.run_url))
        return rows

    def text(self) -> str:
        return "\n".join([self.subject, *(f"{k}: {v}" for k, v in self.lines())])

    def slack(self) -> str:
        """Slack mrkdwn: ``<url|label>`` links, and &, <, > escaped as Slack asks."""

        def esc(s: str) -> str:
            return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        out = [f"*{esc(self.subject)}*"]
        for k, v in self.lines():
            if v.startswith(("http://", "https://")):
                out.append(f"{k}: <{v}|{esc(v)}>")
            else:
                out.append(f"{k}: {esc(v)}")
        return "\n".join(out)

    def html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>"
            + (
                f"<a href='{html.escape(v, quote=True)}'>{html.escape(v)}</a>"
                if v.startswith(("http://", "https://"))
                else html.escape(v)
            )
            + "</td></tr>"
            for k, v in self.lines()
        )
        return f"<p><b>{html.escape(self.subject)}</b></p><table>{rows}</table>"

    def to_json(self) -> dict:
        return {**asdict(self), "subject": self.subject, "text": self.text()}


def base_url() -> str:
    from airflow.sdk import conf

    # the same default as Airflow's own task links (RuntimeTaskInstance.log_url)
    return (conf.get("api", "base_url", fallback=None) or "http://localhost:8080/").rstrip("/")


def run_url(dag_id: str, run_id: str) -> str:
    return f"{base_url()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def compose(event: str, app: Any, context) -> Message:
    """The message for ``event`` from what the run knows: the plan (the plan task's XCom), the
    run's params, the task's reason.  ``app``: the AppConfig (for deployment names)."""
    ti = context["ti"]
    task_id = ti.task_id
    dag_id, run_id = ti.dag_id, ti.run_id
    data = ti.xcom_pull(task_ids=PLAN_TASK)
    plan = Plan.from_json(data) if data else None
    params = context.get("params") or {}
    outcome = FAILED_OUTCOMES.get(task_id, OUTCOMES["failed"]) if event == "failed" else OUTCOMES[event]
    cause, now = "", ""
    if event == "failed":
        cause = _failure_of(context, task_id)
    elif event == "rolled_back":
        task = context.get("task")
        cause = task.failure_reason(context) if hasattr(task, "failure_reason") else ""
    if plan is not None:
        old = app.deployment_name(plan.old_color) if plan.old_color else None
        new = app.deployment_name(plan.new_color)
        if event in ("started", "awaiting_approval"):
            now = f"{old} ({plan.old_image}) serves" if old else "nothing serves yet (first release)"
        elif event in ("switched", "released"):
            now = f"{new} ({plan.image}) serves"
        elif event == "rolled_back":
            now = f"{old} ({plan.old_image}) serves" if old else "nothing serves (the first release was removed)"
        if event == "switched" and plan.old_color:
            now += f"; {old} stays until the soak has passed"
    image = plan.image if plan else (str(params.get("image") or "") or None)
    return Message(
        event=event,
        app=app.name,
        dag_id=dag_id,
        run_id=run_id,
        outcome=outcome,
        old_color=plan.old_color if plan else None,
        old_image=plan.old_image if plan else None,
        new_color=plan.new_color if plan else None,
        image=image,
        cause=cause[:MAX_CAUSE],
        now=now,
        reason=str(params.get("reason") or ""),
        run_url=run_url(dag_id, run_id),
        approval_url=(
            f"{run_url(dag_id, run_id)}/tasks/{quote(task_id, safe='')}/required_actions"
            if event == "awaiting_approval"
            else ""
        ),
    )


def _failure_of(context, task_id: str) -> str:
    """Why the task failed: the reason the step recorded (a refusal), or its exception."""
    try:
        reason = context["ti"].xcom_pull(task_ids=task_id, key=FAILURE_KEY)
    except Exception:
        reason = None
    if reason:
        return str(reason)
    error = context.get("exception")
    if error:
        return f"{type(error).__name__}: {error}" if not isinstance(error, str) else error
    return f"{task_id} failed (see its log)"


# ---------------------------------------------------------------------------------------------
# the receivers
# ---------------------------------------------------------------------------------------------
class WebhookNotifier(BaseNotifier):
    """A generic webhook: POSTs the message as JSON to the URL of an Airflow ``http`` connection
    (host = the URL, or host + port + schema), with ``Authorization: Bearer <password>`` when the
    connection has a password.  Any status but 2xx is an error."""

    def __init__(self, *, http_conn_id: str, payload: dict, timeout: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.http_conn_id, self.payload, self.timeout = http_conn_id, payload, timeout

    @staticmethod
    def url_of(conn) -> str:
        host = (conn.host or "").strip()
        if "://" in host:
            return host
        return f"{conn.schema or 'http'}://{host}" + (f":{conn.port}" if conn.port else "")

    def notify(self, context) -> None:
        import requests
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.http_conn_id)
        headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
        session = requests.Session()
        session.trust_env = False  # a receiver's address is the connection's, not a proxy's
        resp = session.post(self.url_of(conn), json=self.payload, headers=headers, timeout=self.timeout)
        if not 200 <= resp.status_code < 300:
            raise RuntimeError(f"the webhook answered HTTP {resp.status_code}")


def _secrets_of(conn_id: str) -> list[str]:
    """What must never be logged for a receiver: its connection's password, and the URL a Slack
    webhook or an http connection makes of it (a Slack webhook's token is its URL's path)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return []
    found = [conn.password or ""]
    for candidate in (conn.password or "", WebhookNotifier.url_of(conn), conn.host or ""):
        if "://" in candidate:
            parts = urlsplit(candidate)
            found += [candidate, parts.path, parts.query]
    return [s for s in found if s and len(s) >= 4 and s != "/"]


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _sender(receiver: Receiver, message: Message) -> Callable[[Any], None]:
    """A function that sends ``message`` to ``receiver`` (the provider's notifier, or ours)."""
    timeout = receiver.timeout
    if receiver.kind == "slack":
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        notifier: BaseNotifier = SlackWebhookNotifier(
            slack_webhook_conn_id=receiver.conn_id,
            text=message.slack(),
            timeout=max(1, round(timeout)),
            # no retry: slack_sdk logs a retried request's full URL (the webhook's token) at INFO
            retry_handlers=[],
            unfurl_links=False,
        )
    elif receiver.kind == "email":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifier = SmtpNotifier(
            to=list(receiver.to),
            from_email=receiver.from_email,
            smtp_conn_id=receiver.conn_id,
            subject=message.subject,
            html_content=message.html(),
        )
    else:
        notifier = WebhookNotifier(http_conn_id=receiver.conn_id, payload=message.to_json(), timeout=timeout)
    # notify(), not the notifier's __call__: that would render the message as a Jinja template
    # (a reason may hold "{{") and log a failure unredacted.
    return notifier.notify


def deliver(message: Message, receivers: tuple[Receiver, ...], context, log) -> dict[str, str]:
    """Send ``message`` to every receiver at once, each in a thread of its own, and wait for each
    at most its timeout.  Returns ``{receiver: "sent" | "failed: ..." | "timed out"}``; never
    raises."""
    results: dict[str, str] = {}
    started = time.monotonic()
    threads: list[tuple[str, Receiver, threading.Thread]] = []
    for receiver in receivers:
        name = f"{receiver.kind} ({receiver.conn_id})"
        secrets = _secrets_of(receiver.conn_id)
        try:
            send = _sender(receiver, message)
        except Exception as e:  # e.g. a provider that is not installed
            results[name] = f"failed: {type(e).__name__}: {redact(str(e), secrets)}"
            continue

        def run(send=send, name=name, secrets=secrets) -> None:
            try:
                send(context)
                results[name] = "sent"
            except BaseException as e:  # a receiver's failure is logged, never raised
                results[name] = f"failed: {type(e).__name__}: {redact(str(e), secrets)}"

        thread = threading.Thread(target=run, name=f"bluegreen-notify-{receiver.kind}", daemon=True)
        thread.start()
        threads.append((name, receiver, thread))
    for name, receiver, thread in threads:  # all were started at ``started``: wait for each until its deadline
        thread.join(max(0.0, started + receiver.timeout - time.monotonic()))
        if thread.is_alive():
            results.setdefault(name, f"timed out after {receiver.timeout:g}s (given up; the release goes on)")
    results = dict(results)  # a thread given up on may still write its own entry later
    for name, result in results.items():
        if result == "sent":
            log.info("notified %s: %s", name, message.subject)
        else:
            log.warning("could not notify %s of %s: %s", name, message.event, result[:500])
    return results


class ReleaseNotifier(BaseNotifier):
    """Tells an app's receivers that wish to know about ``event`` (a task callback; see the module
    docstring for which task fires which event).  Never raises: a notification is never a reason
    for a release to fail or wait."""

    def __init__(self, *, event: str, app: dict, **kwargs):
        super().__init__(**kwargs)
        self.event = event
        # the app's config as JSON (the same the operators carry); parsed when the event fires
        self.app = app

    def notify(self, context) -> None:
        try:
            from .apps.config import AppConfig

            app = AppConfig.from_json(self.app)
            receivers = app.notify.for_event(self.event) if app.notify else ()
            if not receivers:
                return
            message = compose(self.event, app, context)
        except Exception as e:
            self.log.warning(
                "no %s notification (the message could not be made: %s: %s)", self.event, type(e).__name__, e
            )
            return
        deliver(message, receivers, context, self.log)

    def __repr__(self) -> str:
        return f"ReleaseNotifier({self.event})"


def task_callbacks(app: Any, spec: dict) -> dict[str, dict]:
    """task_id -> the callback keyword arguments of that task, for an app with ``notify``
    (``app``: its AppConfig; ``spec``: its JSON, as the operators carry it).  Only the events some
    receiver wants are wired."""
    notify: Notify | None = app.notify
    if notify is None:
        return {}
    wanted = set(notify.events)
    out: dict[str, dict] = {}
    for task_id, event in SUCCESS_EVENTS.items():
        if event in wanted:
            out.setdefault(task_id, {})["on_success_callback"] = [ReleaseNotifier(event=event, app=spec)]
    if "failed" in wanted:
        for task_id in FAILURE_EVENT_TASKS:
            out.setdefault(task_id, {})["on_failure_callback"] = [ReleaseNotifier(event="failed", app=spec)]
    if "awaiting_approval" in wanted:
        out[APPROVAL_TASK] = {"notifiers": [ReleaseNotifier(event="awaiting_approval", app=spec)]}
    return out
