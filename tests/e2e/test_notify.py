"""Release notifications, run by Airflow (dag.test(), task callbacks as in a worker) against the
sandbox, told to real receivers on loopback: a Slack incoming webhook and a generic webhook (an
HTTP server that records posts) and SMTP (aiosmtpd).  Each event's message, and receivers that fail,
refuse or hang, which never change what a release does."""

from __future__ import annotations

import threading
import time

import pytest

from .harness import task_states
from .receivers import HttpReceiver, SmtpReceiver, connection_env, free_port

pytestmark = [pytest.mark.e2e]

V1, V2 = "registry.local/test:v1", "registry.local/test:v2"
SLACK_TOKEN = "T0000/B0000/xoxE2ESLACKTOKEN"
BEARER = "e2e-bearer-S3CR3T"
SECRETS = (SLACK_TOKEN, "xoxE2ESLACKTOKEN", BEARER, SmtpReceiver.password)
BASE_URL = "https://airflow.example.com"


@pytest.fixture
def connections(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)

    def define(**conns):
        for conn_id, conn in conns.items():
            monkeypatch.setenv(*connection_env(conn_id, conn))

    return define


def answer_approval(dag_id: str, run_id: str, option: str) -> None:
    """What the Required Actions page (the HITL REST API) does with a person's answer: record it
    and resume the task parked in awaiting_input (airflow.api_fastapi...public.hitl)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.sdk import timezone
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    # The notification goes out just before the task parks in awaiting_input: on a busy machine
    # it may take a while to get there (answering earlier would find nothing to resume).
    deadline = time.monotonic() + 60
    while True:
        with create_session() as session:
            ti = session.scalar(
                select(TaskInstance)
                .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == "approve")
                .options(joinedload(TaskInstance.hitl_detail))
            )
            if (ti.state == TaskInstanceState.AWAITING_INPUT and ti.hitl_detail) or time.monotonic() > deadline:
                break
        time.sleep(0.2)
    with create_session() as session:
        ti = session.scalar(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == "approve")
            .options(joinedload(TaskInstance.hitl_detail))
        )
        detail = ti.hitl_detail
        detail.responded_by = {"id": "oncall", "name": "oncall"}
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = [option]
        detail.params_input = {}
        session.add(detail)
        assert ti.state == TaskInstanceState.AWAITING_INPUT, ti.state
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)


def events(posts, run_id=None) -> list[str]:
    return [p.json()["event"] for p in posts if p.path == "/hook" and (run_id is None or p.json()["run_id"] == run_id)]


def test_a_release_with_approval_tells_started_awaiting_approval_switched_released(k8s_app, connections):
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        connections(
            n_slack={"conn_type": "slackwebhook", "password": f"{http.url}/services/{SLACK_TOKEN}"},
            n_hook={"conn_type": "http", "host": f"{http.url}/hook", "password": BEARER},
            n_smtp=smtp.connection(),
        )
        app = k8s_app(
            approval_timeout="90s",  # an answer that never comes fails the run, not the suite's timeout
            notify=[
                {"slack": "n_slack"},
                {"webhook": "n_hook"},
                {"email": "n_smtp", "to": ["oncall@example.com"]},
            ],
        )
        first = app.release(V1)
        assert first.state == "success", task_states(first)
        assert events(http.posts) == ["started", "switched", "released"]
        first_posts = len(http.posts)
        answered: list[BaseException] = []

        def approve():  # as a person does, once told
            try:
                (post,) = http.wait_for(lambda p: p.path == "/hook" and p.json()["event"] == "awaiting_approval", 60)
                answer_approval(post.json()["dag_id"], post.json()["run_id"], "Approve")
            except BaseException as e:  # (the run would wait for ever: say why)
                answered.append(e)
                raise

        person = threading.Thread(target=approve, daemon=True)
        person.start()
        run = app.release(V2, approval=True, reason="JIRA-42")
        person.join(5)
        assert not answered, answered
        assert run.state == "success", task_states(run)

    posts = http.posts[first_posts:]
    hooks = {p.json()["event"]: p.json() for p in posts if p.path == "/hook"}
    assert events(posts) == ["started", "awaiting_approval", "switched", "released"]
    run_url = f"{BASE_URL}/dags/{app.app.dag_id}/runs/{run.run_id.replace('+', '%2B').replace(':', '%3A')}"
    for body in hooks.values():
        assert (body["app"], body["run_id"], body["run_url"]) == (app.app.name, run.run_id, run_url), body
        assert (body["old_color"], body["old_image"], body["new_color"], body["image"]) == ("blue", V1, "green", V2)
        assert body["reason"] == "JIRA-42" and body["outcome"], body
    assert hooks["awaiting_approval"]["approval_url"] == f"{run_url}/tasks/approve/required_actions"
    assert hooks["released"]["now"] == f"test-green ({V2}) serves"
    print("the released message, as the webhook got its text:\n" + hooks["released"]["text"])

    slack = [p.json()["text"] for p in posts if p.path.startswith("/services/")]
    assert len(slack) == 4 and all(f"From: blue ({V1})" in t and f"To: green ({V2})" in t for t in slack), slack
    assert "Approve or reject: <" in slack[1]
    assert [m.subject for m in smtp.mails[3:]] == [
        f"[bluegreen] {app.app.name}: green ({V2}) {outcome}"
        for outcome in (
            "release started",
            "waiting for approval of the switch",
            "traffic switched to the new color; the soak runs",
            "released",
        )
    ]
    assert all(p.headers.get("Authorization") == f"Bearer {BEARER}" for p in http.posts if p.path == "/hook")
    for secret in SECRETS:
        assert not any(secret in p.body.decode() for p in http.posts), secret
        assert not any(secret.encode() in m.data for m in smtp.mails), secret


def test_failing_receivers_never_change_a_release_and_a_rollback_and_a_refusal_are_told(k8s_app, connections):
    with HttpReceiver("error") as broken, HttpReceiver("hang") as hanging, SmtpReceiver() as smtp:
        connections(
            n_slack_500={"conn_type": "slackwebhook", "password": f"{broken.url}/services/{SLACK_TOKEN}"},
            n_hook_refused={"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}/hook", "password": BEARER},
            n_hook_hangs={"conn_type": "http", "host": f"{hanging.url}/hook", "password": BEARER},
            n_smtp=smtp.connection(),
        )
        app = k8s_app(
            readiness_timeout="3s",
            notify=[
                {"slack": "n_slack_500"},
                {"webhook": "n_hook_refused"},
                {"webhook": "n_hook_hangs", "timeout": "1s"},
                {"email": "n_smtp", "to": "oncall@example.com", "events": ["rolled_back", "failed"]},
            ],
        )
        refused = app.release(V1, restore_previous=True)  # nothing to restore: plan refuses
        assert task_states(refused)["plan"] == "failed"
        (mail,) = smtp.wait_for(lambda m: "FAILED" in m.subject)
        assert mail.subject == f"[bluegreen] {app.app.name}: {V1} FAILED before anything changed"
        assert "has never pointed at a release: there is no previous release to roll back to" in mail.body

        tried = (len(broken.posts), len(hanging.posts))  # the refusal was told them too
        started = time.monotonic()
        first = app.release(V1)
        took = time.monotonic() - started
        assert first.state == "success", task_states(first)
        assert (len(broken.posts), len(hanging.posts)) == (tried[0] + 3, tried[1] + 3), "tried at each event"

        run = app.release("registry.local/test:v2-never-ready")
        states = task_states(run)
        assert run.state == "failed"
        assert states["wait_until_ready"] == "failed" and states["rollback"] == "success", states
        assert app.selector() == app.app.selector_for("blue")
        assert app.deployments() == {"test-blue": V1}
        assert len(smtp.mails) == 2, [m.subject for m in smtp.mails]
        rolled = smtp.mails[1]
        assert rolled.subject == f"[bluegreen] {app.app.name}: green (registry.local/test:v2-never-ready) rolled back"
        assert "wait_until_ready: " in rolled.body and f"test-blue ({V1}) serves" in rolled.body
    # three events, each given up on the hanging receiver after its 1 s
    assert took < 30, f"the first release took {took:.1f}s"
    for secret in SECRETS:
        assert not any(secret.encode() in m.data for m in smtp.mails), secret
        assert not any(secret in p.body.decode() for p in broken.posts + hanging.posts), secret
