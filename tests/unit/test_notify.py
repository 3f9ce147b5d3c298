"""Notifications: the config section (every problem names the field and the value), which task's
callback tells which event, the message made from a run's context, and delivery to real receivers
on loopback (Slack webhook, generic webhook, SMTP) that answer, fail, refuse or hang: a receiver
never raises into a release, never holds it past its timeout, and no secret reaches a message or
a log line."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
import yaml
from e2e.receivers import HttpReceiver, SmtpReceiver, connection_env, free_port

from bluegreen.apps.config import AppConfig, load_app
from bluegreen.apps.notify import EVENTS, Notify, Receiver
from bluegreen.release.model import ConfigError

APPS = Path(__file__).resolve().parents[2] / "dags" / "apps"
SLACK_TOKEN = "T0000/B0000/xoxSLACKTOKEN"
BEARER = "bearer-S3CR3T-token"


def config_with(tmp_path, notify) -> Path:
    shutil.copytree(APPS, tmp_path / "apps")
    path = tmp_path / "apps" / "test.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["notify"] = notify
    path.write_text(yaml.safe_dump(raw))
    return path


# -- the config ------------------------------------------------------------------------------
def test_notify_loads_with_its_defaults_and_survives_the_tasks_json(tmp_path):
    app = load_app(
        config_with(
            tmp_path,
            [
                {"slack": "slack_releases", "events": ["failed", "rolled_back", "awaiting_approval"]},
                {"webhook": "releases_hook", "timeout": "5s"},
                {"email": "smtp_default", "to": "oncall@example.com", "from": "releases@example.com"},
            ],
        )
    )
    assert app.notify == Notify(
        receivers=(
            Receiver("slack", "slack_releases", ("awaiting_approval", "rolled_back", "failed")),
            Receiver("webhook", "releases_hook", EVENTS, 5.0),
            Receiver("email", "smtp_default", EVENTS, 10.0, ("oncall@example.com",), "releases@example.com"),
        )
    )
    assert app.notify.events == EVENTS
    assert [r.conn_id for r in app.notify.for_event("started")] == ["releases_hook", "smtp_default"]
    assert AppConfig.from_json(app.to_json()) == app
    assert load_app(APPS / "test.yaml").notify is None


@pytest.mark.parametrize(
    "notify, field, value",
    [
        ("slack_releases", "notify", "slack_releases"),
        ([], "notify", []),
        (["slack_releases"], "notify[0]", "slack_releases"),
        ([{"events": ["failed"]}], "notify[0]", ["events"]),
        ([{"slack": "a", "webhook": "b"}], "notify[0]", ["slack", "webhook"]),
        ([{"slack": ""}], "notify[0].slack", ""),
        ([{"slack": "my conn"}], "notify[0].slack", "my conn"),
        ([{"webhook": "hook", "channel": "#releases"}], "notify[0].channel", "#releases"),
        ([{"webhook": "hook", "events": ["deployed"]}], "notify[0].events", "deployed"),
        ([{"webhook": "hook", "events": "failed"}], "notify[0].events", "failed"),
        ([{"webhook": "hook", "events": []}], "notify[0].events", []),
        ([{"webhook": "hook", "timeout": "soon"}], "notify[0].timeout", "soon"),
        ([{"webhook": "hook", "timeout": "0s"}], "notify[0].timeout", "0s"),
        ([{"webhook": "hook", "to": ["a@example.com"]}], "notify[0].to", ["a@example.com"]),
        ([{"email": "smtp_default"}], "notify[0].to", None),
        ([{"email": "smtp_default", "to": []}], "notify[0].to", []),
        ([{"email": "smtp_default", "to": ["oncall"]}], "notify[0].to", "oncall"),
        ([{"email": "smtp_default", "to": "a@example.com", "from": "me"}], "notify[0].from", "me"),
        ([{"webhook": "ok"}, {"slack": 7}], "notify[1].slack", 7),
    ],
)
def test_a_bad_notify_names_the_field_and_the_value(tmp_path, notify, field, value):
    with pytest.raises(ConfigError) as e:
        load_app(config_with(tmp_path, notify))
    assert (e.value.field, e.value.value) == (field, value), str(e.value)
    assert str(e.value).startswith(str(tmp_path / "apps" / "test.yaml"))


@pytest.mark.parametrize(
    "notify",
    [
        [{"slack": "https://hooks.slack.com/services/T0000/B0000/xoxSLACKTOKEN"}],
        [{"webhook": "hook", "url": "https://hooks.slack.com/services/T0000/B0000/xoxSLACKTOKEN"}],
    ],
)
def test_a_url_in_the_config_is_refused_without_repeating_it(tmp_path, notify):
    with pytest.raises(ConfigError) as e:
        load_app(config_with(tmp_path, notify))
    assert "xoxSLACKTOKEN" not in str(e.value) and "not shown" in str(e.value)


# -- the wiring ------------------------------------------------------------------------------
def callbacks(task, kind):
    return [getattr(c, "event", c) for c in (getattr(task, kind, None) or [])]


def test_each_event_is_the_callback_of_the_task_that_knows_it(tmp_path):
    from bluegreen.dags import release_dag

    app = load_app(config_with(tmp_path, [{"webhook": "hook"}]))
    dag = release_dag(app)
    assert callbacks(dag.get_task("plan"), "on_success_callback") == ["started"]
    assert callbacks(dag.get_task("approve"), "notifiers") == ["awaiting_approval"]
    assert callbacks(dag.get_task("switch_traffic"), "on_success_callback") == ["switched"]
    assert callbacks(dag.get_task("finish"), "on_success_callback") == ["released"]
    assert callbacks(dag.get_task("rollback"), "on_success_callback") == ["rolled_back"]
    for task_id in ("plan", "retire_old_color", "finish", "rollback"):
        assert callbacks(dag.get_task(task_id), "on_failure_callback") == ["failed"], task_id
    # a failure the rollback handles is told by the rollback, not twice
    for task_id in ("deploy_new_color", "wait_until_ready", "approve", "switch_traffic", "soak"):
        assert callbacks(dag.get_task(task_id), "on_failure_callback") == [], task_id


def test_only_the_wanted_events_are_wired_and_none_without_notify(tmp_path):
    from bluegreen.dags import release_dag

    app = load_app(config_with(tmp_path, [{"slack": "s", "events": ["rolled_back"]}]))
    dag = release_dag(app)
    assert callbacks(dag.get_task("rollback"), "on_success_callback") == ["rolled_back"]
    assert all(
        not callbacks(t, "on_failure_callback") and not callbacks(t, "notifiers")
        for t in dag.tasks
        if t.task_id != "rollback"
    )
    assert callbacks(dag.get_task("plan"), "on_success_callback") == []
    plain = release_dag(load_app(APPS / "test.yaml"))
    assert not any(callbacks(t, "on_success_callback") or callbacks(t, "on_failure_callback") for t in plain.tasks)


# -- the message -----------------------------------------------------------------------------
PLAN = {
    "app": "test",
    "run_id": "manual__2026-12-02",
    "new_color": "green",
    "old_color": "blue",
    "image": "registry.local/test:v2",
    "replicas": 3,
    "soak_seconds": 30.0,
    "old_image": "registry.local/test:v1",
}


class FakeTI:
    """The task instance of a callback's context: its ids and the run's XComs."""

    def __init__(self, task_id, xcoms):
        self.task_id, self.dag_id, self.run_id = task_id, "release_test", "manual__2026-12-02"
        self.xcoms = xcoms

    def xcom_pull(self, task_ids, key="return_value"):
        return self.xcoms.get((task_ids, key))


def context_for(task_id, xcoms=None, task=None, **extra):
    xcoms = {("plan", "return_value"): PLAN, **(xcoms or {})}
    params = {"image": PLAN["image"], "reason": "JIRA-42"}
    return {"ti": FakeTI(task_id, xcoms), "params": params, "task": task, **extra}


@pytest.fixture
def base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    return "https://airflow.example.com"


def test_every_message_says_app_colors_images_outcome_reason_and_run(base_url):
    from bluegreen.notifiers import compose

    app = load_app(APPS / "test.yaml")
    run = f"{base_url}/dags/release_test/runs/manual__2026-12-02"
    started = compose("started", app, context_for("plan"))
    assert started.text() == "\n".join(
        [
            "[bluegreen] test: green (registry.local/test:v2) release started",
            "App: test",
            "From: blue (registry.local/test:v1)",
            "To: green (registry.local/test:v2)",
            "Outcome: release started",
            "Now: test-blue (registry.local/test:v1) serves",
            "Reason: JIRA-42",
            f"Run: {run}",
        ]
    )
    approval = compose("awaiting_approval", app, context_for("approve"))
    assert approval.approval_url == f"{run}/tasks/approve/required_actions"
    assert f"Approve or reject: {run}/tasks/approve/required_actions" in approval.text()
    assert "<" + approval.approval_url + "|" in approval.slack()
    assert "Now: test-green (registry.local/test:v2) serves" in compose("released", app, context_for("finish")).text()

    class Rollback:
        def failure_reason(self, context):
            return "wait_until_ready: test-green did not become ready within 4s"

    rolled = compose("rolled_back", app, context_for("rollback", task=Rollback()))
    assert rolled.outcome == "rolled back"
    assert rolled.cause == "wait_until_ready: test-green did not become ready within 4s"
    assert rolled.now == "test-blue (registry.local/test:v1) serves"


def test_a_failure_says_where_it_failed_and_why(base_url):
    from bluegreen.notifiers import compose

    app = load_app(APPS / "test.yaml")
    refused = compose(
        "failed",
        app,
        context_for("plan", {("plan", "return_value"): None, ("plan", "failure"): "test is locked by release run x"}),
    )
    assert refused.outcome == "FAILED before anything changed" and refused.cause == "test is locked by release run x"
    assert refused.new_color is None and refused.image == "registry.local/test:v2"
    assert "From: not known (the release was not planned)" in refused.text()
    stuck = compose("failed", app, context_for("rollback", exception=RuntimeError("the API is gone")))
    assert stuck.outcome == "ROLLBACK FAILED: a person must finish it"
    assert stuck.cause == "RuntimeError: the API is gone"
    assert compose("failed", app, context_for("finish")).cause == "finish failed (see its log)"


def test_html_and_slack_escape_what_a_reason_says(base_url):
    from bluegreen.notifiers import Message

    m = Message("failed", "test", "d", "r", "FAILED", cause="<script>&", run_url="https://x/runs/r")
    assert "<script>" not in m.html() and "&lt;script&gt;&amp;" in m.html()
    assert "<script>" not in m.slack() and "&lt;script&gt;&amp;" in m.slack()


# -- delivery to real receivers ----------------------------------------------------------------
@pytest.fixture
def receivers(monkeypatch):
    with (
        HttpReceiver() as ok,
        HttpReceiver("error") as broken,
        HttpReceiver("hang") as hanging,
        SmtpReceiver() as smtp,
    ):
        conns = {
            "n_slack": {"conn_type": "slackwebhook", "password": f"{ok.url}/services/{SLACK_TOKEN}"},
            # the token alone in the password, the endpoint in the host: the provider joins them
            "n_slack_500": {"conn_type": "slackwebhook", "host": f"{broken.url}/services", "password": SLACK_TOKEN},
            "n_slack_refused": {
                "conn_type": "slackwebhook",
                "password": f"http://127.0.0.1:{free_port()}/services/{SLACK_TOKEN}",
            },
            "n_hook": {"conn_type": "http", "host": f"{ok.url}/hook", "password": BEARER},
            "n_hook_hangs": {"conn_type": "http", "host": f"{hanging.url}/hook", "password": BEARER},
            "n_hook_refused": {"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}/hook/{BEARER}"},
            "n_smtp": smtp.connection(),
            "n_smtp_refused": {**smtp.connection(), "port": free_port()},
            "n_smtp_wrong_password": {**smtp.connection(), "password": "not-the-password"},
        }
        for conn_id, conn in conns.items():
            monkeypatch.setenv(*connection_env(conn_id, conn))
        yield {"ok": ok, "broken": broken, "hanging": hanging, "smtp": smtp}


def message():
    from bluegreen.notifiers import Message

    return Message(
        "rolled_back",
        "test",
        "release_test",
        "manual__1",
        "rolled back",
        "blue",
        "registry.local/test:v1",
        "green",
        "registry.local/test:v2",
        cause="wait_until_ready: not ready",
        now="test-blue (registry.local/test:v1) serves",
        run_url="http://localhost:8080/dags/release_test/runs/manual__1",
    )


SECRETS = (SLACK_TOKEN, "xoxSLACKTOKEN", BEARER, SmtpReceiver.password)


def test_each_kind_of_receiver_gets_the_message(receivers, caplog):
    from bluegreen.notifiers import deliver

    caplog.set_level(logging.INFO)
    results = deliver(
        message(),
        (
            Receiver("slack", "n_slack"),
            Receiver("webhook", "n_hook"),
            Receiver("email", "n_smtp", to=("a@example.com",)),
        ),
        {},
        logging.getLogger("test"),
    )
    assert results == {"slack (n_slack)": "sent", "webhook (n_hook)": "sent", "email (n_smtp)": "sent"}
    ok, smtp = receivers["ok"], receivers["smtp"]
    slack = next(p for p in ok.posts if p.path.startswith("/services/"))
    assert slack.json()["text"].startswith("*[bluegreen] test: green (registry.local/test:v2) rolled back*\nApp: test")
    hook = next(p for p in ok.posts if p.path == "/hook")
    assert hook.headers["Authorization"] == f"Bearer {BEARER}"
    assert hook.json()["event"] == "rolled_back" and hook.json()["old_image"] == "registry.local/test:v1"
    (mail,) = smtp.mails
    assert mail.recipients == ["a@example.com"] and smtp.logins == [b"bluegreen"]
    assert mail.subject == "[bluegreen] test: green (registry.local/test:v2) rolled back"
    assert "wait_until_ready: not ready" in mail.body
    for secret in SECRETS:
        assert secret not in slack.body.decode() and secret not in hook.body.decode(), secret
        assert secret.encode() not in mail.data, secret
        assert secret not in caplog.text, secret


def test_failing_refusing_and_hanging_receivers_are_logged_never_raised_nor_waited_for(receivers, caplog):
    from bluegreen.notifiers import deliver

    caplog.set_level(logging.DEBUG)  # what a DEBUG log would show, too
    started = time.monotonic()
    results = deliver(
        message(),
        (
            Receiver("slack", "n_slack_500"),
            Receiver("slack", "n_slack_refused"),
            Receiver("slack", "n_slack_missing"),
            Receiver("webhook", "n_hook_hangs", timeout=1.0),
            Receiver("webhook", "n_hook_refused"),
            Receiver("email", "n_smtp_refused", to=("a@example.com",)),
            Receiver("email", "n_smtp_wrong_password", to=("a@example.com",), timeout=3.0),
            Receiver("webhook", "n_hook"),
        ),
        {},
        logging.getLogger("test"),
    )
    took = time.monotonic() - started
    assert took < 5, f"the hanging receiver held the release {took:.1f}s"
    assert results.pop("webhook (n_hook)") == "sent", "a good receiver still gets its message"
    assert results["webhook (n_hook_hangs)"].startswith("timed out after 1s")
    assert "500" in results["slack (n_slack_500)"]
    assert all(r.startswith(("failed: ", "timed out")) for r in results.values()), results
    assert len(receivers["hanging"].posts) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "test"]
    assert len(warnings) == 7, warnings
    for secret in SECRETS:
        assert secret not in caplog.text, (secret, [line for line in caplog.text.splitlines() if secret in line])


def test_a_notifier_never_raises_into_its_task(receivers, capfd):
    from bluegreen.notifiers import ReleaseNotifier

    app = load_app(APPS / "test.yaml")
    spec = {**app.to_json(), "notify": {"receivers": [{"kind": "webhook", "conn_id": "n_hook_refused"}]}}
    ReleaseNotifier(event="failed", app=spec)(context_for("plan"))  # the receiver refuses: logged
    ReleaseNotifier(event="started", app=spec)({"no": "ti"})  # no message can be made: logged
    logged = "".join(capfd.readouterr())  # (Airflow's own loggers write there)
    assert "could not notify webhook (n_hook_refused) of failed" in logged
    assert "no started notification" in logged
    assert BEARER not in logged
