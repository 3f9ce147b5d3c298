"""The readiness and soak rules, one observation at a time."""

from bluegreen.release.health import FAILED, PASSED, READY, WAITING, HttpResult, ReadinessJudge, SoakJudge
from bluegreen.release.model import ColorStatus


def status(ready=3, desired=3, restarts=0, complete=None, failure=None, exists=True):
    return ColorStatus(
        exists=exists,
        desired=desired,
        ready=ready,
        restarts=restarts,
        complete=(ready == desired) if complete is None else complete,
        failure=failure,
        progress=f"{ready}/{desired} available",
    )


def test_readiness_waits_then_ready():
    judge = ReadinessJudge("test-green", deadline=100, timeout=60)
    assert judge.judge(status(ready=1), 50).state == WAITING
    assert judge.judge(status(ready=1), 50).message == "1/3 available"
    assert judge.judge(status(), 51).state == READY


def test_readiness_fails_at_once_on_a_failure_and_at_the_deadline():
    judge = ReadinessJudge("test-green", deadline=100, timeout=60)
    v = judge.judge(status(ready=0, failure="deployment test-green exceeded its progress deadline"), 10)
    assert v.state == FAILED and "progress deadline" in v.message
    v = judge.judge(status(ready=2), 100)
    assert v.state == FAILED and v.message == "test-green not ready after 1m: 2/3 available"
    assert judge.judge(status(exists=False), 10).state == FAILED


def test_soak_passes_when_healthy_until_the_end():
    judge = SoakJudge("test-green", ends_at=100, tolerance=0)
    assert judge.judge(status(), True, HttpResult(True, "200"), 10).state == WAITING
    assert judge.judge(status(), True, HttpResult(True, "200"), 100).state == PASSED


def test_soak_fails_on_the_first_unhealthy_observation_beyond_tolerance():
    judge = SoakJudge("test-green", ends_at=100, tolerance=1)
    first = judge.judge(status(ready=2), True, None, 10)
    assert first.state == WAITING and "1/1 tolerated" in first.message
    second = judge.judge(status(), True, HttpResult(False, "GET x answered 503"), 11)
    assert second.state == FAILED and "HTTP check failed: GET x answered 503" in second.message


def test_climbing_restarts_are_unhealthy_even_when_ready():
    judge = SoakJudge("test-green", ends_at=100, tolerance=0, baseline_restarts=2)
    v = judge.judge(status(restarts=3), True, None, 10)
    assert v.state == FAILED and "1 restarts during the soak" in v.message


def test_traffic_moving_away_fails_the_soak_whatever_the_tolerance():
    judge = SoakJudge("test-green", ends_at=100, tolerance=5)
    v = judge.judge(status(), False, None, 10)
    assert v.state == FAILED and "no longer points at it" in v.message
