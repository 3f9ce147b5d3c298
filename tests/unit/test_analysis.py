"""Metric analysis: the config section (every problem names the field and the value), the judge's
rules (due checks, failure limits, no data, Prometheus unreachable, timeouts), the soak's record,
and reading Prometheus' answers.  No I/O: the judge is fed measurements."""

import math
import shutil
from pathlib import Path

import pytest
import yaml

from bluegreen.apps.analysis import Analysis, Check
from bluegreen.apps.config import AppConfig, load_app
from bluegreen.hooks.prometheus import series_values
from bluegreen.release.analysis import FAIL, INCONCLUSIVE, PASS, PRE_SWITCH, SOAK, AnalysisJudge, measurement
from bluegreen.release.health import FAILED, PASSED, WAITING, SoakJudge
from bluegreen.release.model import ColorStatus, ConfigError

APPS = Path(__file__).resolve().parents[2] / "dags" / "apps"
ERROR_RATE = (
    'sum(rate(http_requests_total{deployment="{deployment}",code=~"5.."}[30s]))'
    ' / sum(rate(http_requests_total{deployment="{deployment}"}[30s]))'
)


def check(**changes) -> dict:
    return {"name": "error-rate", "query": ERROR_RATE, "condition": "< 0.05", **changes}


def config_with(tmp_path, analysis) -> Path:
    shutil.copytree(APPS, tmp_path / "apps")
    path = tmp_path / "apps" / "test.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["analysis"] = analysis
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_analysis_loads_with_its_defaults_and_survives_the_tasks_json(tmp_path):
    app = load_app(config_with(tmp_path, {"connection_id": "prom", "before_switch": "20s", "checks": [check()]}))
    assert app.analysis == Analysis(
        connection_id="prom",
        checks=(Check("error-rate", ERROR_RATE, "< 0.05", 10.0, 0, "fail", None),),
        before_switch=20.0,
        during_soak=True,
        unreachable="wait",
        timeout=300.0,
    )
    assert AppConfig.from_json(app.to_json()) == app


@pytest.mark.parametrize(
    "analysis, field, value",
    [
        ("prom", "analysis", "prom"),
        ({"connection_id": "prom", "checks": []}, "analysis.checks", []),
        ({"checks": [check()]}, "analysis.connection_id", None),
        ({"connection_id": "prom", "checks": [check()], "every": "1m"}, "analysis.every", "1m"),
        (
            {"connection_id": "prom", "checks": [check(condition="under 5%")]},
            "analysis.checks[0].condition",
            "under 5%",
        ),
        ({"connection_id": "prom", "checks": [check(condition="<")]}, "analysis.checks[0].condition", "<"),
        ({"connection_id": "prom", "checks": [check(query="up{job='{pod}'}")]}, "analysis.checks[0].query", None),
        ({"connection_id": "prom", "checks": [check(query="sum(rate(x[1m])")]}, "analysis.checks[0].query", None),
        ({"connection_id": "prom", "checks": [check(no_data="ignore")]}, "analysis.checks[0].no_data", "ignore"),
        ({"connection_id": "prom", "checks": [check(interval="0.1s")]}, "analysis.checks[0].interval", "0.1s"),
        ({"connection_id": "prom", "checks": [check(failure_limit=-1)]}, "analysis.checks[0].failure_limit", -1),
        ({"connection_id": "prom", "checks": [check(), check()]}, "analysis.checks[1].name", "error-rate"),
        ({"connection_id": "prom", "checks": [check()], "unreachable": "retry"}, "analysis.unreachable", "retry"),
        ({"connection_id": "prom", "checks": [check()], "during_soak": False}, "analysis.during_soak", False),
    ],
)
def test_a_bad_analysis_is_an_error_naming_the_field_and_the_value(tmp_path, analysis, field, value):
    with pytest.raises(ConfigError) as e:
        load_app(config_with(tmp_path, analysis))
    assert e.value.field == field
    if value is not None:
        assert e.value.value == value


def test_placeholders_are_filled_and_escaped_and_promql_braces_are_left_alone():
    c = Check("x", 'up{deployment="{deployment}", image="{image}"} and on() vector({ app })', "> 0")
    rendered = c.render({"deployment": "shop-green", "image": 'r/a:"1"\\', "app": "shop"})
    assert rendered == 'up{deployment="shop-green", image="r/a:\\"1\\"\\\\"} and on() vector(shop)'


def test_a_measurement_passes_fails_or_says_nothing_by_the_checks_rules():
    c = Check("error-rate", "q", "< 0.05")
    assert measurement(c, [0.01], "q", 1.0).outcome == PASS
    failed = measurement(c, [0.01, 0.2], "q", 1.0)  # every series must pass; the worst is named
    assert failed.outcome == FAIL and failed.value == 0.2 and "0.2 (and 1 more series), wanted < 0.05" in failed.detail
    for rule, outcome in (("fail", FAIL), ("pass", PASS), ("wait", INCONCLUSIVE)):
        nothing = measurement(Check("e", "q", "< 1", no_data=rule), [math.nan], "q", 1.0)
        assert nothing.outcome == outcome and "no data" in nothing.detail


def analysis(*checks: Check, **changes) -> Analysis:
    return Analysis(
        connection_id="prom", checks=checks or (Check("error-rate", "q", "< 0.05", interval=10),), **changes
    )


def test_checks_are_due_at_the_start_every_interval_and_once_at_the_end():
    judge = AnalysisJudge(analysis(), PRE_SWITCH, starts_at=0.0, ends_at=25.0)
    assert judge.due(0.0) == [] and judge.next_due_at() == 10.0, "a new color is first measured an interval in"
    assert [c.name for c in judge.due(10.0)] == ["error-rate"]
    for at in (10.0, 20.0):
        judge.record(measurement(judge.checks["error-rate"], [0.0], "q", at))
    assert judge.due(21.0) == [] and judge.next_due_at() == 25.0
    assert judge.verdict(21.0).state == WAITING
    judge.record(measurement(judge.checks["error-rate"], [0.0], "q", 25.0))
    verdict = judge.verdict(25.0)
    assert verdict.state == PASSED and "3 measurement(s), 0 failed" in verdict.message


def test_failures_beyond_the_limit_fail_the_phase_at_once_naming_the_value_and_query():
    c = Check("error-rate", "sum(errors)", "< 0.05", interval=1, failure_limit=1)
    judge = AnalysisJudge(analysis(c), SOAK, 0.0, ends_at=100.0)
    judge.record(measurement(c, [0.2], "sum(errors)", 1.0))
    assert judge.verdict(1.0).state == WAITING  # one failure tolerated
    judge.record(measurement(c, [0.3], "sum(errors)", 2.0))
    verdict = judge.verdict(2.0)
    assert verdict.state == FAILED
    assert "error-rate = 0.3, wanted < 0.05" in verdict.message and "2 failed measurement(s)" in verdict.message
    assert "sum(errors)" in verdict.message


def test_no_data_under_wait_holds_the_phase_until_the_timeout_then_fails():
    c = Check("latency", "q", "< 0.3", interval=1, no_data="wait")
    judge = AnalysisJudge(analysis(c, timeout=30), PRE_SWITCH, 0.0, ends_at=10.0)
    for at in (0.0, 1.0, 10.0, 20.0):
        judge.record(measurement(c, [], "q", at))
    waiting = judge.verdict(20.0)
    assert waiting.state == WAITING and "waiting for latency (no data)" in waiting.message
    late = judge.verdict(40.0)
    assert late.state == FAILED and "no data for 30s past the phase's end" in late.message
    # data arriving in time passes it
    judge.record(measurement(c, [0.1], "q", 25.0))
    assert judge.verdict(25.0).state == PASSED
    late = AnalysisJudge(analysis(Check("e", "q", "< 1", interval=1, initial_delay=7)), PRE_SWITCH, 100.0, 110.0)
    assert late.next_due_at() == 107.0, "the first measurement waits initial_delay"


def test_prometheus_unreachable_waits_or_fails_as_the_analysis_says():
    c = Check("error-rate", "q", "< 0.05")
    waiting = AnalysisJudge(analysis(c, unreachable="wait", timeout=5), SOAK, 0.0, ends_at=10.0)
    waiting.record_unreachable(c, "cannot reach Prometheus at http://p (connection prom): ConnectionError", 0.0)
    assert waiting.verdict(1.0).state == WAITING
    gone = waiting.verdict(20.0)
    assert gone.state == FAILED and "is unreachable: cannot reach Prometheus" in gone.message
    failing = AnalysisJudge(analysis(c, unreachable="fail"), SOAK, 0.0, ends_at=10.0)
    failing.record_unreachable(c, "ConnectionError", 0.0)
    verdict = failing.verdict(0.0)
    assert verdict.state == FAILED and "unreachable: fail" in verdict.message


def test_the_soak_fails_on_its_analysis_waits_for_it_and_keeps_its_failures_in_its_record():
    c = Check("error-rate", "q", "< 0.05", interval=1, failure_limit=2)
    healthy = ColorStatus(exists=True, desired=2, ready=2, restarts=0, complete=True, progress="2/2 ready")
    soak = SoakJudge("shop-green", ends_at=10.0, tolerance=0)
    soak.analysis = AnalysisJudge(analysis(c), SOAK, 0.0, soak.ends_at)
    soak.analysis.record(measurement(c, [0.5], "q", 1.0))
    assert soak.progress()["analysis"] == {"failures": {"error-rate": 1}}
    # a restarted judge goes on counting from the record
    resumed = AnalysisJudge(analysis(c), SOAK, 0.0, 10.0, soak.progress()["analysis"])
    resumed.record(measurement(c, [0.5], "q", 2.0))
    resumed.record(measurement(c, [0.5], "q", 3.0))
    soak.analysis = resumed
    failed = soak.judge(healthy, True, None, 3.0)
    assert failed.state == FAILED and "shop-green: analysis during the soak failed: error-rate = 0.5" in failed.message
    # over, but a check has had no conclusive measurement yet: the soak waits for it
    quiet = SoakJudge("shop-green", ends_at=10.0, tolerance=0)
    quiet.analysis = AnalysisJudge(analysis(Check("e", "q", "< 1", no_data="wait")), SOAK, 0.0, 10.0)
    quiet.analysis.record(measurement(quiet.analysis.checks["e"], [], "q", 10.0))
    assert quiet.judge(healthy, True, None, 11.0).state == WAITING
    quiet.analysis.record(measurement(quiet.analysis.checks["e"], [0.5], "q", 12.0))
    passed = quiet.judge(healthy, True, None, 12.0)
    assert passed.state == PASSED and "analysis during the soak passed" in passed.message


def test_prometheus_answers_are_read_as_prometheus_writes_them():
    vector = {"resultType": "vector", "result": [{"metric": {"a": "1"}, "value": [1.0, "0.25"]}]}
    assert series_values(vector) == [0.25]
    assert math.isnan(series_values({"resultType": "scalar", "result": [1.0, "NaN"]})[0])
    assert series_values({"resultType": "vector", "result": []}) == []
    with pytest.raises(ValueError, match="matrix"):
        series_values({"resultType": "matrix", "result": []})
