"""What the task classes ask of a Release instead of its platform: the color serving now, the
approval's body, what a person types to finish a rollback by hand, the soak's judge."""

from bluegreen.release.health import FAILED, WAITING

from .test_release_steps import IMAGE1, IMAGE2, green_deployed, release, switched_to_green


def test_serving_color_follows_the_service(app, platform):
    assert release(app, platform, "run0").serving_color() is None  # no Service yet
    r, plan = green_deployed(app, platform)
    assert r.serving_color() == "blue"
    r.switch(plan)
    assert r.serving_color() == "green"


def test_the_approval_summary_shows_the_new_color_and_what_is_live(app, platform):
    r, plan = green_deployed(app, platform)
    summary = r.approval_summary(plan)
    assert f"**test-green** runs `{IMAGE2}`: 3/3" in summary, summary
    assert f"Live now: **test-blue** (`{IMAGE1}`)." in summary
    assert "switches to selector `{'app': 'test-green'}`" in summary and "**Reject** rolls back" in summary


def test_finishing_by_hand_names_both_commands(app, platform):
    r, plan = switched_to_green(app, platform)
    by_hand = r.finish_by_hand(plan)
    assert by_hand.startswith("make sure the Service points at test-blue once it is fully ready (switch to ")
    assert by_hand.endswith(f"then remove test-green ({platform.manual_delete('green')})")


def test_the_soak_judge_records_its_progress_only_when_it_moved(app, platform):
    import dataclasses

    app = dataclasses.replace(app, soak_tolerance=2, http_check=None)
    platform.app = app
    r, plan = switched_to_green(app, platform)
    r = release(app, platform, "run2")
    judge = r.soak_judge(plan)
    assert r.soak_judge(plan).ends_at == judge.ends_at, "a second look resumes the same soak"
    healthy = r.judge_soak(plan, judge, platform.observe("green"), True, None, judge.ends_at - 1)
    assert healthy.state == WAITING and judge.unhealthy == 0
    platform.workloads["green"]["ready"] = 2
    tolerated = r.judge_soak(plan, judge, platform.observe("green"), True, None, judge.ends_at - 1)
    assert tolerated.state == WAITING and r.soak_judge(plan).unhealthy == 1, "the count is kept on the Service"
    assert r.judge_soak(plan, judge, platform.observe("green"), False, None, judge.ends_at - 1).state == FAILED
