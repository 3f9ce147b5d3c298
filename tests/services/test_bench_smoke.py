"""A quick run of ``make bench`` (benchmarks/release.py) on this session's services stack and
sandbox, so that it cannot rot: N = 2 on both platforms, a short soak, no deferral phase, no 100-app
parse.  Asserts the figures are there and sane, not how good they are."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import find_sandbox_pid  # noqa: E402
from benchmarks.release import BenchConfig, render, run_benchmark  # noqa: E402

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("airflow-services")]

LAST_LINE = re.compile(
    r"^bench: overhead -?\d+\.\d+s, cpu \d+\.\d+s/release, api \d+/release, "
    r"T\(2\)/T\(1\)=n/a, vs script \d+\.\d+ at N=2$"
)


def test_bench_runs_and_reports(airflow_services, sandbox):
    config = BenchConfig(
        ns=[2],
        soak=1.0,
        defer_soak=0,
        ready_after=0.5,
        prefix="benchsmoke",
        parse_apps=0,
        parse_repeats=1,
        first_release="direct",
        settle=0,
    )
    results = run_benchmark(airflow_services, sandbox, config, find_sandbox_pid(sandbox.state_dir))
    text = render(results)
    print(text)

    assert set(results["platforms"]) == {"kubernetes", "bcs-mesos"}
    for platform, rows in results["platforms"].items():
        [row] = rows
        air, script = row["airflow"], row["script"]
        assert air["all_succeeded"], (platform, air["states"])
        assert not script["failed"], (platform, script["failed"])
        assert 0 < script["T"] < air["T"], (platform, script["T"], air["T"])
        assert row["ratio"] and row["ratio"] > 0, row
        assert air["api_per_release"] > 0 and script["api_per_release"] > 0, (air, script)
        assert air["api_by_verb"] and air["api_by_task"], air
        assert 0 < air["api_excl_soak_per_release"] <= air["api_per_release"], air
        assert air["cpu_per_release"] > 0 and air["cpu"]["tasks"] > 0 and air["cpu"]["sandbox"] > 0, air["cpu"]
        assert air["hops_per_release"] >= 7 and air["hop_mean"] is not None, air
        assert row["readiness"] > 0
    assert results["parse"]["task_context_ms"] > 0
    last = text.splitlines()[-1]
    assert last == results["summary"]["line"]
    assert LAST_LINE.match(last), last
